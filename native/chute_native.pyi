"""chute's conversion core (Rust, native/src): see tasks/convert/engine.py, its one caller."""

Chunk = tuple[int, bytes | None, bytes | None, list[tuple[bytes, bytes]] | None]
"""One chunk, in file order: (rows, JSON Lines, Parquet row group bytes, text columns as
(little-endian int64 offsets, UTF-8 values) for typed mode)."""

class BadContent(ValueError):
    """The content can't be converted; the message names the row."""

class Converter:
    def __init__(
        self,
        header: list[str],
        delimiter: str,
        quote: str,
        *,
        jsonl: bool,
        parquet: bool,
        columns: bool,
        workers: int,
        max_record: int,
        zstd_level: int,
    ) -> None: ...
    def feed(self, block: bytes) -> tuple[list[Chunk], BadContent | None]:
        """The chunks ``block`` completed, and the error to raise once they are written."""
    def finish(self) -> tuple[list[Chunk], BadContent | None, bytes]:
        """The last chunks, the error if any, and the Parquet file's last bytes."""
