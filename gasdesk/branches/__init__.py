"""Service branches (营业网点): where residents go, when they are open, and the holiday schedule."""
