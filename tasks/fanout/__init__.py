"""One large file split across many workers: cut, convert the parts, assemble one output."""
