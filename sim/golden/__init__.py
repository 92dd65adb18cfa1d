"""The golden model: exact fp16 arithmetic, the SNN training contract, its float64 twin, datasets and test vectors."""
