"""chute's conversion core (Rust, native/src): see tasks/convert/engine.py, its one caller."""

Chunk = tuple[int, bytes | None, bytes | None, list[tuple[bytes, bytes]] | None]
"""One chunk, in file order: (rows, JSON Lines, Parquet row group bytes, text columns as
(little-endian int64 offsets, UTF-8 values) for typed mode)."""

NULL_MARKERS: list[str]
"""Values that are null in a column typed by inference (kept as written in a text column)."""

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
        infer: bool = False,
        types: list[str] | None = None,
        row_group_rows: int = 1 << 20,
        row_group_bytes: int = 128 << 20,
    ) -> None:
        """``infer``: types inferred from the values (widened as they come, ``restart``);
        ``types``: these types (``schema()`` of a conversion that must restart); neither: text.
        A Parquet row group ends at ``row_group_rows`` rows or ``row_group_bytes`` of input."""
    def feed(self, block: bytes) -> tuple[list[Chunk], BadContent | None]:
        """The chunks ``block`` completed, and the error to raise once they are written."""
    def finish(self) -> tuple[list[Chunk], BadContent | None, bytes]:
        """The last chunks, the error if any, and the Parquet file's last bytes."""
    def schema(self) -> list[str] | None:
        """Typed mode: each column's type that every value read fits (the whole file's after
        ``finish``)."""
    def masks(self) -> list[int] | None:
        """Typed mode: each column's mask of the types every value read fits; the masks of a
        file's parts AND into the whole file's."""
    def restart(self) -> bool:
        """Whether the output was given up for a wider type: convert again with
        ``types=schema()``."""
    def widenings(self) -> list[tuple[int, str, str, int, str]]:
        """(column index, type before, type after, row, first value that didn't fit)."""

def kind_of(mask: int) -> str | None:
    """The type of a column whose values fit ``mask``; None: null markers only (any type)."""
