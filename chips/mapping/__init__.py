"""Mapping: place a ``Graph`` onto the cores of a chip (``chips.spec.ChipSpec``).

``map_graph(graph, chip)`` returns a ``Mapping``: which cores hold which output channels of
every node, what each core uses, how many router hops and packets each spike costs, and every
``Violation`` of the chip's limits (``strict=True`` raises ``MappingError`` instead).

Where things live (each module's docstring states its rules):

* ``layers``     ``Part``, ``Layer``; grouping graph nodes into layers; resources of a part;
* ``capacity``   ``Violation``, ``MappingError``; channel splits and the checks against the
                 chip's cores and limits;
* ``placement``  which core holds each part (serpentine / greedy / memory-fit / passive);
* ``model``      ``Mapping`` (parts, per-core usage, spike routes, reports), ``PartTable``,
                 ``CoreUse``;
* ``mapper``     ``map_graph``, the entry point;
* ``chips.topology``  mesh geometry: core coordinates, hops, XY routes, serpentine order.
"""
from chips.mapping.capacity import MappingError, Violation
from chips.mapping.layers import Layer, Part
from chips.mapping.mapper import map_graph
from chips.mapping.model import CoreUse, Mapping, PartTable

__all__ = ["Mapping", "MappingError", "Part", "PartTable", "Layer", "CoreUse", "Violation",
           "map_graph"]
