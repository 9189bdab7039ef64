"""The results store: SQLite in WAL mode, with a schema version and ordered migrations.

One row per Measurement (measured, estimated and published alike, told apart by ``provenance``); raw samples
are kept as a float32 blob. Everything a report shows is stored when it is produced, so a report is a function
of this file alone: each measured row's machine and runtime versions (``env``), each estimate's per-layer
breakdown (``details``), and the manifest of every artifact a row measured (``artifacts``: fidelity,
compatibility findings, notes), keyed by the file's sha256. Concurrency: WAL lets readers run beside one writer, every write is a single
``BEGIN IMMEDIATE`` transaction with a generous busy timeout, so two ``deploykit bench`` processes writing at
once both succeed and lose nothing. Each measurement is committed as soon as it finishes, so an interrupted
sweep (Ctrl-C, a crash) keeps every finished result and leaves a readable database.
"""

from __future__ import annotations

import json
import sqlite3
import time
from array import array
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from .artifact import Manifest, read_manifest
from .errors import DeploykitError, FileError, plain_text
from .measurement import LatencyStats, Measurement

DEFAULT_DB = "deploykit-results.db"
SCHEMA_VERSION = 6

# Migration N takes the database from version N-1 to N. Never edit a released one; append.
MIGRATIONS: list[str] = [
    """
    CREATE TABLE measurements (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        created TEXT NOT NULL,
        model TEXT NOT NULL,
        resolution INTEGER NOT NULL,
        format TEXT NOT NULL,
        precision TEXT NOT NULL,
        target TEXT NOT NULL,
        device TEXT NOT NULL,
        backend TEXT NOT NULL,
        provenance TEXT NOT NULL CHECK (provenance IN ('measured', 'estimated', 'published')),
        status TEXT NOT NULL CHECK (status IN ('ok', 'failed', 'unsupported')),
        artifact_sha256 TEXT,
        artifact TEXT,
        median_ms REAL,
        stats TEXT NOT NULL,
        env TEXT NOT NULL,
        delegate TEXT NOT NULL,
        error TEXT,
        samples BLOB
    );
    CREATE INDEX measurements_target ON measurements (target, model);
    CREATE INDEX measurements_model ON measurements (model, provenance);
    """,
    # 2: measured accuracy (`deploykit eval`), which reports prefer over published top-1
    """
    CREATE TABLE accuracy (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        created TEXT NOT NULL,
        model TEXT NOT NULL,
        resolution INTEGER NOT NULL,
        format TEXT NOT NULL,
        precision TEXT NOT NULL,
        artifact TEXT,
        artifact_sha256 TEXT,
        dataset TEXT NOT NULL,
        images INTEGER NOT NULL,
        top1 REAL NOT NULL,
        top5 REAL NOT NULL
    );
    CREATE INDEX accuracy_model ON accuracy (model);
    """,
    # 3: the report reads only the store: artifact manifests and estimate breakdowns are stored with the rows
    """
    ALTER TABLE measurements ADD COLUMN details TEXT NOT NULL DEFAULT '{}';
    CREATE TABLE artifacts (
        sha256 TEXT PRIMARY KEY,
        created TEXT NOT NULL,
        file TEXT NOT NULL,
        model TEXT NOT NULL,
        format TEXT NOT NULL,
        precision TEXT NOT NULL,
        status TEXT NOT NULL,
        manifest TEXT NOT NULL
    );
    """,
    # 4: was the machine quiet? (deploykit.quality), and warnings that travel with a row
    """
    ALTER TABLE measurements ADD COLUMN quality TEXT CHECK (quality IN ('clean', 'noisy'));
    ALTER TABLE measurements ADD COLUMN warnings TEXT NOT NULL DEFAULT '[]';
    ALTER TABLE accuracy ADD COLUMN weights_real INTEGER NOT NULL DEFAULT 0;
    ALTER TABLE accuracy ADD COLUMN weights_source TEXT;
    """,
    # 5: status 'device-unavailable' (a farm's bench job whose device left the cluster). SQLite cannot change a
    # CHECK constraint in place: the table is rebuilt, every row and id kept.
    """
    CREATE TABLE measurements_v5 (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        created TEXT NOT NULL,
        model TEXT NOT NULL,
        resolution INTEGER NOT NULL,
        format TEXT NOT NULL,
        precision TEXT NOT NULL,
        target TEXT NOT NULL,
        device TEXT NOT NULL,
        backend TEXT NOT NULL,
        provenance TEXT NOT NULL CHECK (provenance IN ('measured', 'estimated', 'published')),
        status TEXT NOT NULL CHECK (status IN ('ok', 'failed', 'unsupported', 'device-unavailable')),
        artifact_sha256 TEXT,
        artifact TEXT,
        median_ms REAL,
        stats TEXT NOT NULL,
        env TEXT NOT NULL,
        delegate TEXT NOT NULL,
        error TEXT,
        samples BLOB,
        details TEXT NOT NULL DEFAULT '{}',
        quality TEXT CHECK (quality IN ('clean', 'noisy')),
        warnings TEXT NOT NULL DEFAULT '[]'
    );
    INSERT INTO measurements_v5 SELECT id, created, model, resolution, format, precision, target, device, backend,
        provenance, status, artifact_sha256, artifact, median_ms, stats, env, delegate, error, samples, details,
        quality, warnings FROM measurements;
    DROP TABLE measurements;
    ALTER TABLE measurements_v5 RENAME TO measurements;
    CREATE INDEX measurements_target ON measurements (target, model);
    CREATE INDEX measurements_model ON measurements (model, provenance);
    """,
    # 6: a run's label (`bench`/`sweep --label NAME`, a git commit say): what `deploykit compare` selects a run by
    """
    ALTER TABLE measurements ADD COLUMN label TEXT;
    CREATE INDEX measurements_label ON measurements (label);
    """,
]

_COLUMNS = (
    "created model resolution format precision target device backend provenance status artifact_sha256 artifact"
    " median_ms stats env delegate error samples details quality warnings label"
).split()


class Store:
    def __init__(self, path: str | Path = DEFAULT_DB):
        self.path = Path(path)
        _refuse_what_is_no_database(self.path)
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self.conn = sqlite3.connect(str(self.path), timeout=60, isolation_level=None)
            self._retry_while_locked(lambda: self.conn.execute("PRAGMA journal_mode=WAL"))
            self.conn.execute("PRAGMA busy_timeout=60000")
            self.conn.execute("PRAGMA synchronous=NORMAL")
            self._migrate()
        except sqlite3.DatabaseError as e:
            raise DeploykitError(f"cannot open results database {self.path}: {e}", hint="give another --db") from None

    @classmethod
    def existing(cls, path: str | Path) -> Store:
        """The database a reading command (``results``, ``report``, ``estimate --fit``) was pointed at. Opening a
        Store creates a missing file and writes its schema into an empty one; a command that only reads must
        leave a path that is not a deploykit database as it found it, so it is looked at read-only first."""
        path = Path(path)
        if not path.exists():
            raise DeploykitError(f"no results database at {path}", hint="run `deploykit bench` first or give --db")
        _refuse_what_is_no_database(path)
        if not _is_deploykit_database(path):  # an empty file, which a writer may make a database of
            raise _not_a_database(path)
        return cls(path)  # a deploykit database: opened as usual, an older one migrated

    def close(self) -> None:
        self.conn.close()

    def __enter__(self) -> Store:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    @staticmethod
    def _retry_while_locked(step, attempts: int = 20, wait_s: float = 0.05) -> None:
        """``step`` again while SQLite says the file is locked, waiting a little longer each time (``wait_s`` ×
        attempt). busy_timeout covers most contention, not all: switching a new file to WAL needs it to itself
        and does not wait, so a second process creating the same database at that moment is told "database is
        locked" at once (test_two_writers_lose_nothing met it in a full-suite run on the 2-core test machine)."""
        for attempt in range(attempts):
            try:
                step()
                return
            except sqlite3.OperationalError as e:
                if "locked" not in str(e) or attempt == attempts - 1:
                    raise
                time.sleep(wait_s * (attempt + 1))

    @contextmanager
    def _write(self) -> Iterator[sqlite3.Connection]:
        self._retry_while_locked(lambda: self.conn.execute("BEGIN IMMEDIATE"))
        try:
            yield self.conn
            self.conn.execute("COMMIT")
        except BaseException:
            self.conn.execute("ROLLBACK")
            raise

    def schema_version(self) -> int:
        return self.conn.execute("PRAGMA user_version").fetchone()[0]

    def _migrate(self) -> None:
        version = self.schema_version()
        if version > SCHEMA_VERSION:
            raise DeploykitError(
                f"{self.path} has schema version {version}, newer than this deploykit ({SCHEMA_VERSION})",
                hint="upgrade deploykit",
            )
        if version == SCHEMA_VERSION:
            return
        with self._write() as c:
            version = c.execute("PRAGMA user_version").fetchone()[0]  # another process may have migrated
            for n in range(version, SCHEMA_VERSION):
                # executescript() would COMMIT our transaction: run the statements one by one inside it
                for statement in MIGRATIONS[n].split(";"):
                    if statement.strip():
                        c.execute(statement)
            if version < 3:
                self._backfill_artifacts(c)
            c.execute(f"PRAGMA user_version={SCHEMA_VERSION}")

    def _backfill_artifacts(self, c: sqlite3.Connection) -> None:
        """Databases from before version 3 point at artifact files; store the manifests of those still there."""
        for (path,) in c.execute("SELECT DISTINCT artifact FROM measurements WHERE artifact IS NOT NULL").fetchall():
            try:
                manifest = read_manifest(Path(path)) if Path(path).exists() else None
            except DeploykitError:
                manifest = None
            if manifest is not None:
                self._put_artifact(c, manifest)

    def add(self, m: Measurement, manifest: Manifest | None = None) -> int:
        """Store a Measurement (and the manifest of the artifact it measured), in one transaction."""
        with self._write() as c:
            if manifest is not None and manifest.sha256:
                self._put_artifact(c, manifest)
            return self._insert(c, m)

    def add_many(self, ms: list[Measurement]) -> None:
        """Store several Measurements all or nothing (an import)."""
        with self._write() as c:
            for m in ms:
                self._insert(c, m)

    @staticmethod
    def _insert(c: sqlite3.Connection, m: Measurement) -> int:
        row = m.to_dict()
        # a failure's text often comes straight from a converter or runtime, colour codes and all
        row["error"] = plain_text(row["error"]) if row["error"] else row["error"]
        row["warnings"] = [plain_text(w) for w in row["warnings"]]
        for k in ("stats", "env", "delegate", "details", "warnings"):
            row[k] = json.dumps(row[k], default=str)
        row["samples"] = array("f", m.samples_ms).tobytes() if m.samples_ms else None
        cur = c.execute(
            f"INSERT INTO measurements ({', '.join(_COLUMNS)}) VALUES ({', '.join('?' * len(_COLUMNS))})",
            [row[k] for k in _COLUMNS],
        )
        m.id = cur.lastrowid
        return cur.lastrowid

    @staticmethod
    def _put_artifact(c: sqlite3.Connection, manifest: Manifest) -> None:
        from .artifact import json_default

        c.execute(
            "INSERT OR REPLACE INTO artifacts (sha256, created, file, model, format, precision, status, manifest)"
            " VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
            [
                manifest.sha256,
                manifest.created or time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
                manifest.file,
                manifest.model.get("name", "?"),
                manifest.format,
                manifest.precision,
                manifest.status,
                json.dumps(manifest.to_dict(), default=json_default),
            ],
        )

    def artifacts(self) -> dict[str, Manifest]:
        """Every stored artifact manifest, by the file's sha256."""
        rows = self.conn.execute("SELECT sha256, manifest FROM artifacts").fetchall()
        return {sha: Manifest.from_dict(json.loads(text)) for sha, text in rows}

    def query(
        self,
        model: str | None = None,
        device: str | None = None,
        target: str | None = None,
        provenance: str | None = None,
        status: str | None = None,
        samples: bool = False,
        label: str | None = None,
    ) -> list[Measurement]:
        where, args = [], []
        fields = (
            ("model", model),
            ("device", device),
            ("target", target),
            ("provenance", provenance),
            ("label", label),
        )
        for col, val in fields:
            if val is not None:
                where.append(f"{col} = ?")
                args.append(val)
        if status is not None:
            where.append("status = ?")
            args.append(status)
        sql = "SELECT id, " + ", ".join(_COLUMNS) + " FROM measurements"
        if where:
            sql += " WHERE " + " AND ".join(where)
        sql += " ORDER BY id"
        out = []
        for r in self.conn.execute(sql, args):
            d = dict(zip(["id", *_COLUMNS], r))
            for k in ("env", "delegate", "details", "warnings"):
                d[k] = json.loads(d[k])
            d["stats"] = LatencyStats.from_dict(json.loads(d["stats"]))
            blob = d.pop("samples")
            d["samples_ms"] = array("f", blob).tolist() if blob and samples else []
            out.append(Measurement(**d))
        return out

    def add_accuracy(self, row: dict) -> int:
        cols = ["created", "model", "resolution", "format", "precision", "artifact", "artifact_sha256", "dataset"]
        cols += ["images", "top1", "top5", "weights_real", "weights_source"]
        row = {"created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()), **row}
        with self._write() as c:
            cur = c.execute(
                f"INSERT INTO accuracy ({', '.join(cols)}) VALUES ({', '.join('?' * len(cols))})",
                [row.get(k) for k in cols],
            )
            return cur.lastrowid

    def accuracy(self, model: str | None = None) -> list[dict]:
        sql = "SELECT * FROM accuracy" + (" WHERE model = ?" if model else "") + " ORDER BY id"
        cur = self.conn.execute(sql, [model] if model else [])
        names = [d[0] for d in cur.description]
        return [dict(zip(names, r)) for r in cur]

    def add_unseen(self, ms: list[Measurement], identity) -> list[Measurement]:
        """Store those of ``ms`` whose ``identity(m)`` matches no stored row of their target (nor an earlier one
        of ``ms``), all or nothing; return the skipped ones. Read and written in one transaction, so two imports
        of one file at once cannot both store it."""
        skipped = []
        with self._write() as c:
            seen = {identity(m) for target in {m.target for m in ms} for m in self.query(target=target)}
            for m in ms:
                key = identity(m)
                if key in seen:
                    skipped.append(m)
                    continue
                seen.add(key)
                self._insert(c, m)
        return skipped

    def delete(self, ids: list[int]) -> int:
        """Remove the measurements with these row ids, all or nothing; return how many went."""
        with self._write() as c:
            gone = 0
            for row_id in ids:
                gone += c.execute("DELETE FROM measurements WHERE id = ?", [row_id]).rowcount
        return gone

    def labels(self) -> dict[str, int]:
        """Every run label in the store, with its number of rows, in the order they were first used."""
        rows = self.conn.execute(
            "SELECT label, COUNT(*) FROM measurements WHERE label IS NOT NULL GROUP BY label ORDER BY MIN(id)"
        )
        return dict(rows.fetchall())

    def count(self) -> int:
        return self.conn.execute("SELECT COUNT(*) FROM measurements").fetchone()[0]


def _refuse_what_is_no_database(path: Path) -> None:
    """One answer, whichever command was given it: a folder is a usage error (exit 2); a file with content that is
    not a deploykit database (text, another program's SQLite file) is a file deploykit cannot use (exit 1), and it
    is never written to. A missing or empty file is a new database."""
    if path.is_dir():
        raise DeploykitError(f"--db {path} is a folder: give a database file")
    if not path.exists() or (path.is_file() and path.stat().st_size == 0):
        return
    tables = _sqlite_tables(path) if path.is_file() else None
    # no table yet is a database another process is creating at this moment (two writers may start together)
    if tables is None or (tables and "measurements" not in tables):
        raise _not_a_database(path)


def _not_a_database(path: Path) -> FileError:
    return FileError(f"{path} is not a deploykit database (it was left as it is)", hint="give the --db a command wrote")


def _sqlite_tables(path: Path) -> set[str] | None:
    """The tables of an SQLite file, asked read-only; None for a file that is not one."""
    try:
        conn = sqlite3.connect(f"{path.resolve().as_uri()}?mode=ro", uri=True)
    except sqlite3.Error:
        return None
    try:
        return {name for (name,) in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
    except sqlite3.Error:  # "file is not a database"
        return None
    finally:
        conn.close()


def _is_deploykit_database(path: Path) -> bool:
    """Whether ``path`` is an SQLite file holding deploykit's measurements table, asked read-only: an empty
    file, another program's database or a file of any other kind is never written to."""
    if not path.is_file() or path.stat().st_size == 0:  # SQLite would take an empty file for an empty database
        return False
    try:
        conn = sqlite3.connect(f"{path.resolve().as_uri()}?mode=ro", uri=True)
    except sqlite3.Error:
        return False
    try:
        tables = {name for (name,) in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
        return "measurements" in tables and conn.execute("PRAGMA user_version").fetchone()[0] >= 1
    except sqlite3.Error:  # "file is not a database"
        return False
    finally:
        conn.close()
