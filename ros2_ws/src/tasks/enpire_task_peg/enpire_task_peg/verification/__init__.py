"""The peg cell's verification: a colour judge per camera, fused into one verdict."""
