"""Speed measurements anyone can re-run (`fastdiff bench`), written as tables to assets/."""
