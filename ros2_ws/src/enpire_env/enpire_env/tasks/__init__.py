"""Task definitions shared by the cell, the verifier and the policies: geometry and success rules."""
