"""The reference interpreter: a dense, clear numpy execution of a ``Graph`` that serves as the
oracle for the chip engines. It shares the IR's semantics (``neurosim.ir.semantics``), never the
engines' code."""
