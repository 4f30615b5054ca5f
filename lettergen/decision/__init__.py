"""The decision: the three-valued criteria engine (verdicts, missing facts, conflicts) and appeal deadlines."""
