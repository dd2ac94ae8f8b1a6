"""C parsing with tree-sitter-c."""
