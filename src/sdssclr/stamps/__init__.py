"""Stage 3, the stamps: WCS-aligned five-band stamps cut field by field into memory-mapped
shards with a Parquet index, and objects loaded with their stamps and features."""
