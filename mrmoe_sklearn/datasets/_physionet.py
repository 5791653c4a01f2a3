"""Loader of the PhysioNet/Computing in Cardiology Challenge 2012 data.

:func:`fetch_physionet2012` reads the 12,000 ICU stays of the challenge
(sets a, b and c, 4,000 each; the first 48 hours after admission; target:
in-hospital death) into the package's input contract, a channels-first 3D
array with a time channel, downloading PhysioNet's files first where they are
missing. :func:`physionet2012_split` gives the train/validation/test parts of
the five published 80/10/10 splits.

Files
-----
The files live in ``<data_home>/physionet2012/``, in PhysioNet's own layout::

    set-a.tar.gz  set-b.tar.gz  set-c.tar.gz        members set-X/<RecordID>.txt
    Outcomes-a.txt  Outcomes-b.txt  Outcomes-c.txt  RecordID,SAPS-I,SOFA,...
    splits.csv                                      optional, see below

``data_home`` is the argument, else the environment variable
``MRMOE_SKLEARN_DATA``, else ``~/mrmoe_sklearn_data`` (:func:`get_data_home`);
an empty argument or variable counts as not given (it never means the current
folder). A folder that already holds the files can be used in place: for
``/data/physionet2012/set-a.tar.gz`` pass ``data_home="/data"`` (the folder
above ``physionet2012/``, not that folder itself). Nothing is written there
unless a file is missing and has to be downloaded. When files are missing and
cannot be downloaded, the error names the folder searched and the files not
found there, says why the download failed, and points out a ``data_home`` that
looks one level off (named ``physionet2012`` itself, or with the files just
beside or below it).

The archives and Outcomes files are downloaded from :data:`BASE_URL`
(``https://physionet.org/files/challenge-2012/1.0.0/``) with :mod:`urllib`:
each into a temporary file of the same folder, read and checked completely,
and only then renamed into place (:func:`os.replace`), so an interrupted or
corrupt download leaves nothing of the file behind. The folders a call creates
for its downloads (``physionet2012/``, and ``data_home`` and its parents where
they are missing) are removed again when a download fails or is interrupted
and nothing was kept in them; files downloaded and checked before the failure
are kept, and the next call downloads only the rest. A folder that existed
before the call, and any file the call did not write, are never removed.
Archive bytes are not compared with a checksum (repacked archives with the
same members are accepted); the contents are checked instead (see
Verification).

``splits.csv`` (``RecordID,split1,...,split5``, values ``train``/``val``/
``test``) is the list of the five 80/10/10 splits published with Raindrop
(Zhang et al., ICLR 2022) and used by later papers. It is not on PhysioNet, so
it is never downloaded: put it into the folder yourself. Without it the
Bunch's ``splits`` is None and :func:`physionet2012_split` raises a
``ValueError`` that says where the file belongs; no split is ever made up.

Record format and how it is read
--------------------------------
Each record is a CSV text with the header ``Time,Parameter,Value`` and one
measurement a line, ``hh:mm,Name,value`` (time since ICU admission). CRLF line
ends and blank lines are accepted.

* The rows at ``00:00`` named ``RecordID``, ``Age``, ``Gender``, ``Height``,
  ``ICUType`` and ``Weight`` are the general descriptors; ``-1`` there means
  unknown and becomes NaN. ``RecordID`` must match the file name.
* ``Weight`` is also a time series: the ``00:00`` Weight descriptor is the
  Weight channel's observation at time 0 (unless ``-1``).
* Outside the descriptors values are kept as charted (the raw data holds a few
  ``-1`` blood pressures and negative temperatures; cleaning them is left to
  the user).
* Repeated (time, parameter) pairs are averaged (two stays chart two weights
  at ``00:00``, for instance).
* Rows whose parameter is neither a descriptor nor one of the 37 time-series
  variables (on the real files: 2,403 rows with an empty name in 1,594 stays)
  are dropped with a ``UserWarning`` that lists the names and counts; so are
  descriptor names charted after ``00:00``.

Output layout (the input contract of the estimators)
----------------------------------------------------
``data`` is a float64 array ``(n_records, 42, n_timesteps)``, channels first
(:data:`FEATURE_NAMES`):

* channel 0, ``Time``: hours since admission (minutes / 60); pass
  ``time_channel=0`` to the estimators;
* channels 1-4, the static descriptors ``Age``, ``Gender``, ``Height``,
  ``ICUType``: observed at the first step only (time 0), NaN elsewhere;
* channels 5-41, the 37 time-series variables in the challenge's
  (alphabetical) order: ``Albumin, ALP, ALT, AST, Bilirubin, BUN, Cholesterol,
  Creatinine, DiasABP, FiO2, GCS, Glucose, HCO3, HCT, HR, K, Lactate, Mg, MAP,
  MechVent, Na, NIDiasABP, NIMAP, NISysABP, PaCO2, PaO2, pH, Platelets,
  RespRate, SaO2, SysABP, Temp, TroponinI, TroponinT, Urine, WBC, Weight``.

There is one step per distinct time stamp of a record, sorted by time; the
first step is always time 0, where the descriptors are charted, so the 12
stays without any measurement keep that single step. Records are padded at
the end with NaN in every channel (the time channel included) to the longest
record (215 steps on the real data). Records are sorted by RecordID.

Verification
------------
After reading, every record file must have an Outcomes row and every Outcomes
row a record file, RecordIDs must be unique across the three sets, and
``In-hospital_death`` must be 0 or 1. A set of the official size (4,000
records) must hold the official number of deaths (a 554, b 568, c 585; 1,707
in all): data that only looks official is refused. Smaller sets (test data,
subsets) are checked for consistency only. A truncated or malformed file
raises an ``OSError`` (archives) or ``ValueError`` (contents) that names it and
says to delete it so that it is downloaded again.

Speed and memory
----------------
An archive's 4,000 records are read by one :func:`pandas.read_csv` call (each
line prefixed with its RecordID) and the 3D array is built with vectorised
numpy; an archive with an irregular record (spaces around fields,
whitespace-only lines, anything malformed) is read by an exact line-by-line
parser instead, which also names the member and line of an error. Measured on the real files, on
the development machine (2 cores shared with training jobs, load about 4):
the first load in a fresh process took 13 s wall-clock (8.6 s CPU), a second
load in the same process 6.5 s (5.5 s CPU); the line-by-line parser alone
would take about 36 s. No parsed copy is cached: parsing is about half of the
time, and the folder a user points at may be read-only. The array holds
12,000 x 42 x 215 float64 values, about 870 MB (peak resident memory of a
load: about 1.9 GB); ``as_frame=True`` adds a table of 5.3 million rows.

License and citation
--------------------
The data are published under the Open Data Commons Attribution License v1.0.
Cite Silva I, Moody G, Scott DJ, Celi LA, Mark RG. Predicting in-hospital
mortality of ICU patients: the PhysioNet/Computing in Cardiology Challenge
2012. Computing in Cardiology 2012;39:245-248; and Goldberger AL et al.
PhysioBank, PhysioToolkit, and PhysioNet. Circulation 2000;101(23):e215-e220.
"""

from __future__ import annotations

import csv
import gzip
import io
import math
import os
import re
import secrets
import sys
import tarfile
import urllib.parse
import urllib.request
import warnings
import zlib
from array import array
from collections import Counter
from http.client import HTTPException
from pathlib import Path

import numpy as np
from sklearn.utils import Bunch
from sklearn.utils._param_validation import InvalidParameterError, validate_params

from .._params import IntInterval, invalid_parameter

__all__ = ["fetch_physionet2012", "get_data_home", "physionet2012_split"]

#: Where missing files are downloaded from (override with ``base_url=``).
BASE_URL = "https://physionet.org/files/challenge-2012/1.0.0/"

#: Environment variable naming the default data folder.
DATA_HOME_ENV = "MRMOE_SKLEARN_DATA"

#: The three sets of the challenge.
SETS = ("a", "b", "c")

#: The static descriptors that get a channel (Weight is a time series too).
STATIC_FEATURES = ("Age", "Gender", "Height", "ICUType")

#: The 37 time-series variables, in the challenge's order.
TIME_SERIES = (
    "Albumin", "ALP", "ALT", "AST", "Bilirubin", "BUN", "Cholesterol", "Creatinine",
    "DiasABP", "FiO2", "GCS", "Glucose", "HCO3", "HCT", "HR", "K", "Lactate", "Mg",
    "MAP", "MechVent", "Na", "NIDiasABP", "NIMAP", "NISysABP", "PaCO2", "PaO2", "pH",
    "Platelets", "RespRate", "SaO2", "SysABP", "Temp", "TroponinI", "TroponinT",
    "Urine", "WBC", "Weight",
)  # fmt: skip

#: Channel names of ``data``: the time channel, the static descriptors, the series.
FEATURE_NAMES = ("Time",) + STATIC_FEATURES + TIME_SERIES

#: Facts of the official sets: (records, in-hospital deaths).
OFFICIAL_COUNTS = {"a": (4000, 554), "b": (4000, 568), "c": (4000, 585)}

OUTCOME_COLUMNS = ("RecordID", "SAPS-I", "SOFA", "Length_of_stay", "Survival", "In-hospital_death")
_SPLIT_VALUES = ("train", "val", "test")
_SUBFOLDER = "physionet2012"
_SPLITS_FILE = "splits.csv"
_URL_SCHEMES = ("http", "https", "ftp", "file")  # what urllib.request.urlopen reads
_TIMEOUT = 60  # seconds without data before a download gives up
_HINT_SCAN = 1000  # at most this many entries of data_home are looked into for a misplaced physionet2012/
_CHUNK = 1 << 20

_CHANNEL = {name: i for i, name in enumerate(FEATURE_NAMES) if i > 0}
_WEIGHT = _CHANNEL["Weight"]
_N_STATIC = len(STATIC_FEATURES)  # channels 1.._N_STATIC are the static descriptors


@validate_params({"data_home": [str, os.PathLike, None]}, prefer_skip_nested_validation=True)
def get_data_home(data_home=None):
    """Return the folder where the package's datasets are kept.

    Parameters
    ----------
    data_home : str, path-like or None, default=None
        The folder. None or the empty string ``""`` (both: not given) take the
        environment variable ``MRMOE_SKLEARN_DATA``, or ``~/mrmoe_sklearn_data``
        where it is unset or empty; an empty value never means the current
        folder (pass ``"."`` for that). ``~`` is expanded.

    Returns
    -------
    data_home : str
        The folder's path. It is not created here: the fetchers create it only
        when they have something to download, and remove it again if it is
        still empty when the download fails.

    Examples
    --------
    >>> from mrmoe_sklearn.datasets import get_data_home
    >>> get_data_home("/tmp/my_data")
    '/tmp/my_data'
    """
    if _not_given(data_home):
        data_home = os.environ.get(DATA_HOME_ENV) or os.path.join("~", "mrmoe_sklearn_data")
    return os.path.expanduser(os.fspath(data_home))


def _not_given(data_home):
    """Whether ``data_home`` leaves the folder to the environment variable or the default (None or "")."""
    return data_home is None or (isinstance(data_home, str) and not data_home)


def _archive_name(s):
    return f"set-{s}.tar.gz"


def _outcomes_name(s):
    return f"Outcomes-{s}.txt"


def _corrupt(label, reason, cls=ValueError):
    """The error for a file whose content cannot be used (the caller adds the cure)."""
    return cls(f"{label} is not a valid PhysioNet 2012 file: {reason}.")


def _expected_files():
    """The six files the loader needs, archives first."""
    return [_archive_name(s) for s in SETS] + [_outcomes_name(s) for s in SETS]


def _not_found(folder, missing):
    """The sentence saying which expected files are not in ``folder``."""
    return f"PhysioNet 2012 file(s) {', '.join(missing)} not found in {folder}."


def _holding(path):
    """The expected files that ``path`` holds, as words ('' where none)."""
    try:
        found = [name for name in _expected_files() if (path / name).is_file()]
    except OSError:
        return ""
    if not found:
        return ""
    return "all six PhysioNet 2012 files" if len(found) == len(SETS) * 2 else ", ".join(found)


def _location_hint(home):
    """Advice where ``data_home`` looks one level off from the files, else ''.

    ``data_home`` is the folder *above* ``physionet2012/``. The common mistakes:
    ``data_home`` is the ``physionet2012`` folder itself (or holds the files
    directly), the files are in a ``physionet2012/`` beside ``data_home``
    (one level up), or in ``<data_home>/<folder>/physionet2012/`` (one level
    down). Looks at the entries of ``data_home`` (at most ``_HINT_SCAN``) and
    at its parent only.
    """
    hints = []
    here = _holding(home)
    if home.name == _SUBFOLDER:
        held = f" and holds {here}" if here else ""
        hints.append(
            f"data_home={str(home)!r} is itself a folder named {_SUBFOLDER}{held}, but data_home is the folder "
            f"above {_SUBFOLDER}/ (the files are looked for in <data_home>/{_SUBFOLDER}/): did you mean "
            f"data_home={str(home.parent)!r}?"
        )
    elif here:
        hints.append(
            f"data_home={str(home)!r} holds {here} directly, but they are looked for in its subfolder "
            f"{_SUBFOLDER}/: move them into {home / _SUBFOLDER}."
        )
    else:
        sibling = home.parent / _SUBFOLDER
        held = _holding(sibling) if sibling != home / _SUBFOLDER else ""
        if held:
            hints.append(f"{sibling} holds {held}: did you mean data_home={str(home.parent)!r}?")
    below = []
    try:
        with os.scandir(home) as entries:
            for _, entry in zip(range(_HINT_SCAN), entries):
                if entry.is_dir() and _holding(Path(entry.path) / _SUBFOLDER):
                    below.append(Path(entry.path))
    except OSError:
        pass
    for child in sorted(below)[:3]:
        hints.append(
            f"{child / _SUBFOLDER} holds {_holding(child / _SUBFOLDER)}: did you mean data_home={str(child)!r}?"
        )
    return " ".join(hints)


def _check_data_home(data_home, home, folder):
    """Refuse a ``data_home`` that is (or lies under, or holds as ``physionet2012``) a file."""
    for path in (folder, *folder.parents):
        if not path.exists():
            continue
        if path.is_dir():
            return
        if path == home:
            reason = f"{home} is a file, not a folder."
        elif path == folder:
            reason = f"{folder}, the folder where the files belong, is a file."
        else:
            reason = f"{path} is a file, so no folder can be made under it."
        allowed = f"a folder (or a path where one can be made) whose {_SUBFOLDER}/ subfolder holds the files"
        if _not_given(data_home):
            raise ValueError(
                f"The data folder {home} (data_home={data_home!r}: the environment variable {DATA_HOME_ENV}, "
                f"else ~/mrmoe_sklearn_data) must be {allowed}, but {reason}"
            )
        value = data_home if isinstance(data_home, str) else os.fspath(data_home)
        message = str(invalid_parameter("data_home", "fetch_physionet2012", allowed, value))
        raise InvalidParameterError(f"{message[: -len(' instead.')]} instead: {reason}")


def _check_base_url(base_url):
    """Refuse a ``base_url`` that :func:`urllib.request.urlopen` cannot open."""
    parts = urllib.parse.urlsplit(base_url)
    if parts.scheme.lower() not in _URL_SCHEMES or not (parts.netloc or parts.scheme.lower() == "file"):
        allowed = f"the URL of a folder that holds the files, such as {BASE_URL!r} (schemes: {', '.join(_URL_SCHEMES)})"
        raise invalid_parameter("base_url", "fetch_physionet2012", allowed, base_url)


def _with_advice(exc, advice):
    """``exc`` again with ``advice`` appended, for the plain OSError/ValueError raised here."""
    if type(exc) not in (OSError, ValueError):
        return exc
    return type(exc)(f"{exc} {advice}")


# ---------------------------------------------------------------------------
# Reading
# ---------------------------------------------------------------------------
# A record is read into observations: (RecordID, minutes since admission,
# channel index into FEATURE_NAMES, value). Two parsers produce them with the
# same rules: _parse_exact, line by line in Python, is the reference and says
# precisely what is wrong with a malformed line; _parse_fast reads a whole
# archive's records with pandas' C parser in one go (four times faster on the
# real files) and hands over to _parse_exact at the first thing it is not sure of.
_HEADER = b"Time,Parameter,Value"


class _Irregular(Exception):
    """Raised by the fast parser for input it leaves to the exact one."""


class _DownloadError(OSError):
    """Raised by :func:`_copy_url` when a file cannot be downloaded (the network, the server)."""


def _minutes(stamp):
    """``"hh:mm"`` -> minutes since admission, or None if it is not a time stamp."""
    hours, colon, mins = stamp.partition(":")
    if not (colon and len(mins) == 2 and hours.isdigit() and mins.isdigit() and int(mins) < 60):
        return None
    return int(hours) * 60 + int(mins)


def _keep(minutes, name, value, dropped):
    """Channel of an observation, or None where the rules drop or skip it.

    Unknown (-1) descriptors are skipped; parameters with no channel and
    descriptors charted after 00:00 are counted in ``dropped`` by label.
    RecordID rows must be checked by the caller.
    """
    channel = _CHANNEL.get(name)
    if name == "RecordID" or (minutes and channel is not None and channel <= _N_STATIC):
        dropped[f"{name} after 00:00"] += 1  # (RecordID at 00:00 is the caller's)
        return None
    if channel is None:
        dropped[name] += 1
        return None
    if minutes == 0 and value == -1 and (channel <= _N_STATIC or channel == _WEIGHT):
        return None
    return channel


def _parse_exact(members, label):
    """Parse ``(record_id, member_name, raw_bytes)`` records line by line.

    Returns the observations as four arrays (RecordID, minutes, channel,
    value) and the Counter of dropped rows; raises ``ValueError`` naming the
    member and line of the first malformed line.
    """
    obs = (array("q"), array("q"), array("q"), array("d"))
    dropped = Counter()
    for record_id, member, raw in members:
        where = f"{label}, member {member}"
        try:
            lines = raw.decode("utf-8").splitlines()
        except UnicodeDecodeError as exc:
            raise ValueError(f"{where}: not UTF-8 text ({exc})") from None
        start = 0
        while start < len(lines) and not lines[start].strip():
            start += 1
        if start == len(lines) or lines[start].strip() != _HEADER.decode():
            found = repr(lines[start][:60]) if start < len(lines) else "an empty file"
            raise ValueError(f"{where}: expected the header 'Time,Parameter,Value', found {found}")
        for lineno, line in enumerate(lines[start + 1 :], start + 2):
            if not line.strip():
                continue
            parts = line.split(",")
            minutes = _minutes(parts[0].strip()) if len(parts) == 3 else None
            try:
                value = float(parts[2]) if minutes is not None else math.nan
            except ValueError:
                value = math.nan
            if not math.isfinite(value):
                raise ValueError(f"{where}, line {lineno}: cannot read {line!r} as 'hh:mm,Parameter,Value'")
            name = parts[1].strip()
            if name == "RecordID" and minutes == 0:
                if value != record_id:
                    raise ValueError(f"{where}, line {lineno}: RecordID {parts[2].strip()} differs from the file name")
                continue
            channel = _keep(minutes, name, value, dropped)
            if channel is not None:
                for column, item in zip(obs, (record_id, minutes, channel, value)):
                    column.append(item)
    return tuple(np.asarray(column) for column in obs), dropped


def _parse_fast(members):
    """Parse the records of one archive at once; raise :class:`_Irregular` when unsure.

    Every line of a record is prefixed with its RecordID (one ``bytes.replace``
    a record), the concatenation is read by :func:`pandas.read_csv` with the
    time stamps and names as categories, and the rules are applied to whole
    columns. Anything beyond clean records with CRLF or empty lines (a
    malformed line, whitespace-only lines, a bad header, a non-finite value,
    a RecordID row that differs from the file name) is left to
    :func:`_parse_exact`.
    """
    import pandas as pd

    chunks = []
    for record_id, _, raw in members:
        head, _, body = raw.replace(b"\r", b"").partition(b"\n")
        if head != _HEADER:
            raise _Irregular
        prefix = b"%d," % record_id
        chunks.append(prefix + body.replace(b"\n", b"\n" + prefix))
    try:
        table = pd.read_csv(
            io.BytesIO(b"\n".join(chunks)),
            header=None,
            names=["RecordID", "Time", "Parameter", "Value"],
            dtype={"RecordID": np.int64, "Time": "category", "Parameter": "category", "Value": np.float64},
            keep_default_na=False,
            na_values=[""],
            quoting=csv.QUOTE_NONE,  # no CSV quoting: the exact parser knows none either
            engine="c",
        )
    except (ValueError, OverflowError, pd.errors.ParserError) as exc:  # UnicodeDecodeError is a ValueError
        raise _Irregular from exc
    record = table["RecordID"].to_numpy()
    values = table["Value"].to_numpy()
    stamps, names = table["Time"].cat, table["Parameter"].cat
    stamp_minutes = [_minutes(stamp) for stamp in stamps.categories]
    if None in stamp_minutes:
        raise _Irregular
    time_code, name_code = (c.codes.to_numpy().astype(np.int64) for c in (stamps, names))  # int8/16 codes
    blank = (time_code < 0) & (name_code < 0) & np.isnan(values)  # a line holding only the prefix
    if np.any((time_code < 0) & ~blank) or not np.all(np.isfinite(values[~blank])):
        raise _Irregular
    record, values, time_code, name_code = (a[~blank] for a in (record, values, time_code, name_code))
    minutes = np.asarray(stamp_minutes, dtype=np.int64)[time_code] if time_code.size else time_code.astype(np.int64)
    name_list = [str(name).strip() for name in names.categories] + [""]  # code -1: empty name
    if len(set(name_list)) < len(name_list):  # names that differ only by spaces
        raise _Irregular
    name_code = np.where(name_code < 0, len(name_list) - 1, name_code)
    is_id = (name_code == name_list.index("RecordID") if "RecordID" in name_list else False) & (minutes == 0)
    if np.any(values[is_id] != record[is_id]):
        raise _Irregular
    # The rules of _keep depend on the name, whether the time is 0 and whether
    # the value is -1: apply them once per combination (a small int) that occurs.
    key = (name_code * 2 + (minutes == 0)) * 2 + (values == -1)
    count = np.bincount(key, minlength=4 * len(name_list))
    channel_of = np.full(count.size, -1, dtype=np.int64)
    dropped = Counter()
    for combo in np.flatnonzero(count):
        name, at_zero, minus_one = name_list[combo // 4], (combo // 2) % 2, combo % 2
        if name == "RecordID" and at_zero:
            continue
        found = Counter()
        channel = _keep(0 if at_zero else 1, name, -1.0 if minus_one else 0.0, found)
        channel_of[combo] = -1 if channel is None else channel
        dropped.update({label: int(count[combo]) for label in found})
    channels = channel_of[key]
    kept = channels >= 0
    return (record[kept], minutes[kept], channels[kept], values[kept]), dropped


def _read_archive(path, s, label):
    """Read ``set-<s>.tar.gz``: the RecordIDs of its members and their observations.

    Returns ``(ids, observations, dropped)``: the RecordIDs in archive order,
    the four observation arrays (RecordID, minutes, channel, value) and the
    Counter of dropped rows.
    """
    pattern = re.compile(rf"set-{s}/(\d+)\.txt")
    members = []
    try:
        with tarfile.open(path, "r:gz") as archive:
            for member in archive:
                if member.isdir():
                    continue
                match = pattern.fullmatch(member.name)
                if match is None or not member.isfile():
                    raise _corrupt(label, f"unexpected member {member.name!r} (expected set-{s}/<RecordID>.txt)")
                members.append((int(match.group(1)), member.name, archive.extractfile(member).read()))
    except (tarfile.TarError, EOFError, zlib.error, gzip.BadGzipFile) as exc:
        reason = f"the archive is truncated or damaged ({type(exc).__name__}: {exc})"
        raise _corrupt(label, reason, OSError) from exc
    if not members:
        raise _corrupt(label, "the archive holds no record")
    ids = [record_id for record_id, _, _ in members]
    repeated = sorted(i for i, c in Counter(ids).items() if c > 1)
    if repeated:
        raise _corrupt(label, f"RecordID(s) {repeated[:5]} stored twice")
    try:
        observations, dropped = _parse_fast(members)
    except _Irregular:
        observations, dropped = _parse_exact(members, label)
    return ids, observations, dropped


def _read_csv(path, label, **kwargs):
    """:func:`pandas.read_csv`, a file that is no CSV reported as such."""
    import pandas as pd

    try:
        return pd.read_csv(path, **kwargs)
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as exc:
        raise _corrupt(label, f"cannot be read as CSV ({exc})") from None


def _read_outcomes(path, label):
    """Read ``Outcomes-<s>.txt`` into a DataFrame of ints indexed by RecordID."""
    import pandas as pd

    frame = _read_csv(path, label)
    if tuple(frame.columns) != OUTCOME_COLUMNS:
        raise _corrupt(
            label, f"expected the columns {','.join(OUTCOME_COLUMNS)}, found {','.join(map(str, frame.columns))}"
        )
    if len(frame) == 0:
        raise _corrupt(label, "it holds no row")
    bad = [c for c in OUTCOME_COLUMNS if not pd.api.types.is_integer_dtype(frame[c])]
    if bad:
        raise _corrupt(label, f"column(s) {bad} hold empty or non-integer values (is the file cut short?)")
    if frame["RecordID"].duplicated().any():
        raise _corrupt(label, f"RecordID(s) {sorted(frame.RecordID[frame.RecordID.duplicated()])[:5]} appear twice")
    if not frame["In-hospital_death"].isin((0, 1)).all():
        raise _corrupt(label, "In-hospital_death holds values other than 0 and 1")
    return frame.set_index("RecordID")


def _read_splits(path, record_ids):
    """Read ``splits.csv`` into a DataFrame indexed by ``record_ids`` (None where absent)."""
    try:
        return _parse_splits(path, str(path), record_ids)
    except ValueError as exc:
        raise _with_advice(exc, "It is not on PhysioNet: replace it with a correct copy, or remove it.") from exc


def _split_count(columns):
    """N where ``columns`` are ``RecordID,split1,...,splitN`` (N >= 1), else None."""
    columns = list(columns)
    n = len(columns) - 1
    return n if n >= 1 and columns == ["RecordID"] + [f"split{k}" for k in range(1, n + 1)] else None


def _parse_splits(path, label, record_ids):
    """The checks and reading of :func:`_read_splits`."""
    import pandas as pd

    frame = _read_csv(path, label, dtype=str)
    columns = list(frame.columns)
    if _split_count(columns) is None:
        raise _corrupt(label, f"expected the columns RecordID,split1,...,splitN, found {','.join(columns)}")
    if frame.isna().any().any() or not frame["RecordID"].str.fullmatch(r"\d+").all():
        raise _corrupt(label, "it holds empty cells or a RecordID that is not a number")
    frame["RecordID"] = frame["RecordID"].astype(np.int64)
    if frame["RecordID"].duplicated().any():
        raise _corrupt(label, "a RecordID appears twice")
    values = frame[columns[1:]]
    if not values.isin(_SPLIT_VALUES).all().all():
        raise _corrupt(label, "values other than train, val and test")
    unknown = np.setdiff1d(frame["RecordID"], record_ids)
    if unknown.size:
        raise _corrupt(label, f"RecordID(s) {unknown[:5].tolist()} have no record")
    out = frame.set_index("RecordID").reindex(pd.Index(record_ids, name="RecordID"))
    return out.astype(object).where(out.notna(), None)


# ---------------------------------------------------------------------------
# Downloading
# ---------------------------------------------------------------------------
def _download(url, target, reader, verbose):
    """Download ``url`` to ``target`` atomically; return ``reader(temp, label)``.

    The file is written to a temporary file in ``target``'s folder and read
    completely by ``reader`` before it is renamed to ``target``; on any
    failure the temporary file is removed and nothing is left behind.
    """
    folder = target.parent
    # Not tempfile.mkstemp: its files are private (0600), the cache follows the umask.
    temp = folder / f".{target.name}.{os.getpid()}.{secrets.token_hex(4)}.part"
    out = open(temp, "xb")
    try:
        with out:
            _copy_url(url, out, target.name, verbose)
        try:
            result = reader(temp, f"{target.name} downloaded from {url}")
        except (OSError, ValueError) as exc:
            raise _with_advice(exc, "No part of it was kept.") from exc
        os.replace(temp, target)
    except BaseException:
        try:
            os.remove(temp)
        except FileNotFoundError:
            pass
        raise
    return result


def _copy_url(url, out, name, verbose):
    """Stream ``url`` into the open file ``out``, with a percentage on stderr.

    The progress line is ended also when the download fails or is interrupted.
    """
    shown = None  # the last progress shown; None while nothing is on stderr
    try:
        with urllib.request.urlopen(url, timeout=_TIMEOUT) as response:
            total = response.headers.get("Content-Length")
            total = int(total) if total and total.isdigit() else None
            done = 0
            while True:
                chunk = response.read(_CHUNK)
                if not chunk:
                    break
                out.write(chunk)
                done += len(chunk)
                progress = f"{100 * done // total:3d}%" if total else f"{done / 1e6:.1f} MB"
                if verbose and progress != shown:
                    shown = progress
                    print(f"\rDownloading {name} from {url}: {progress}", end="", file=sys.stderr, flush=True)
            if total is not None and done != total:
                raise OSError(f"got {done} of {total} bytes")
    except (OSError, HTTPException) as exc:
        raise _DownloadError(f"Could not download {url}: {exc}. No part of {name} was kept.") from exc
    finally:
        if shown is not None:
            print(file=sys.stderr, flush=True)


def _obtain(folder, name, reader, base_url, verbose):
    """Read ``folder/name`` with ``reader``, downloading the file first where it is missing.

    ``folder`` must exist where the file is missing (see :func:`_make_folders`).
    """
    path = folder / name
    if path.is_file():
        try:
            return reader(path, str(path))
        except (OSError, ValueError) as exc:
            advice = f"Delete it and call fetch_physionet2012 again to download it afresh from {base_url}."
            raise _with_advice(exc, advice) from exc
    return _download(base_url.rstrip("/") + "/" + name, path, reader, verbose)


def _make_folders(folder):
    """Create ``folder`` and its missing parents; return the ones created, outermost first.

    A folder that exists already, or that another process creates meanwhile,
    is not in the list. If a creation fails, the folders created before it are
    removed again and the error is raised.
    """
    missing = []
    path = folder
    while not path.is_dir() and path.parent != path:
        missing.append(path)
        path = path.parent
    created = []
    try:
        for path in reversed(missing):
            try:
                path.mkdir()
            except FileExistsError:
                if not path.is_dir():
                    raise
                continue
            created.append(path)
    except BaseException:
        _remove_folders(created)
        raise
    return created


def _remove_folders(created):
    """Remove the folders of ``created`` (outermost first) that are empty, innermost first.

    :func:`os.rmdir` removes only empty folders: a folder that holds anything
    (a file kept, another process's download) is left, and so are those around it.
    """
    for path in reversed(created):
        try:
            path.rmdir()
        except FileNotFoundError:
            continue
        except OSError:
            return


def _obtain_all(folder, missing, base_url, verbose):
    """Read the Outcomes files and archives of the three sets, downloading the ``missing`` ones.

    Returns ``(outcomes, archives)``, dicts by set of what :func:`_read_outcomes`
    and :func:`_read_archive` return. When a download fails or is interrupted
    (``KeyboardInterrupt`` included), the folders this call created for the
    downloads are removed again where nothing was kept in them.
    """
    created = _make_folders(folder) if missing else []
    fetch = dict(base_url=base_url, verbose=verbose)
    try:
        outcomes = {s: _obtain(folder, _outcomes_name(s), _read_outcomes, **fetch) for s in SETS}
        archives = {
            s: _obtain(folder, _archive_name(s), lambda p, label, s=s: _read_archive(p, s, label), **fetch)
            for s in SETS
        }
    except BaseException:
        _remove_folders(created)
        raise
    return outcomes, archives


def _obtain_or_explain(home, download_if_missing, base_url, verbose):
    """:func:`_obtain_all` for ``home/physionet2012``; missing files that cannot be had explained.

    The ``OSError`` for files that are missing (and not to be downloaded, or
    whose download failed) names the folder and the files not found there,
    then why the download failed, then :func:`_location_hint`'s advice.
    """
    folder = home / _SUBFOLDER
    missing = [name for name in _expected_files() if not (folder / name).is_file()]
    if missing and not download_if_missing:
        hint = _location_hint(home)
        raise OSError(
            f"{_not_found(folder, missing)}{' ' + hint if hint else ''} Pass download_if_missing=True to "
            "download them from PhysioNet, or put them there."
        )
    try:
        return _obtain_all(folder, missing, base_url, verbose)
    except _DownloadError as exc:
        kept = [name for name in missing if (folder / name).is_file()]
        kept = f" {', '.join(kept)}, downloaded before, were kept." if kept else ""
        hint = _location_hint(home)
        raise OSError(
            f"{_not_found(folder, missing)} Downloading them from {base_url} failed: {exc}{kept}"
            f"{' ' + hint if hint else ''}"
        ) from exc


# ---------------------------------------------------------------------------
# Assembling
# ---------------------------------------------------------------------------
def _dense(record_index, minutes, channels, values, n_records):
    """Build the padded channels-first array from flat observations.

    Every record gets a step at time 0; repeated (record, time, channel)
    observations are averaged.
    """
    n_channels = len(FEATURE_NAMES)
    span = int(minutes.max(initial=0)) + 1
    obs_key = record_index.astype(np.int64) * span + minutes
    step_key = np.unique(np.concatenate([obs_key, np.arange(n_records, dtype=np.int64) * span]))
    step_record = step_key // span
    first = np.searchsorted(step_record, np.arange(n_records))
    step_pos = np.arange(step_key.size) - first[step_record]
    n_steps = int(np.bincount(step_record, minlength=n_records).max())
    data = np.full((n_records, n_channels, n_steps), np.nan)
    data[step_record, 0, step_pos] = (step_key % span) / 60.0
    obs_step = step_pos[np.searchsorted(step_key, obs_key)]
    cell = (record_index.astype(np.int64) * n_channels + channels) * n_steps + obs_step
    cells, inverse = np.unique(cell, return_inverse=True)
    sums = np.bincount(inverse, weights=values, minlength=cells.size)
    data.reshape(-1)[cells] = sums / np.bincount(inverse, minlength=cells.size)
    return data


def _verify(outcomes, archives, folder):
    """Cross-check each set's record files against its Outcomes file."""
    for s in SETS:
        ids = np.asarray(archives[s][0])
        table = outcomes[s]
        files = f"{folder / _archive_name(s)} and {folder / _outcomes_name(s)}"
        no_outcome = np.setdiff1d(ids, table.index)
        no_record = np.setdiff1d(table.index, ids)
        if no_outcome.size or no_record.size:
            raise ValueError(
                f"{files} do not match: {no_record.size} Outcomes row(s) without a record file "
                f"{no_record[:5].tolist()}, {no_outcome.size} record file(s) without an Outcomes row "
                f"{no_outcome[:5].tolist()}. Delete both files and call fetch_physionet2012 again "
                "to download them afresh."
            )
        n_official, deaths_official = OFFICIAL_COUNTS[s]
        deaths = int(table["In-hospital_death"].sum())
        if len(ids) == n_official and deaths != deaths_official:
            raise ValueError(
                f"{files} hold the official {n_official} records but {deaths} in-hospital deaths "
                f"instead of {deaths_official}. Delete both files and call fetch_physionet2012 "
                "again to download them afresh."
            )
    ids, counts = np.unique(np.concatenate([archives[s][0] for s in SETS]), return_counts=True)
    shared = ids[counts > 1]
    if shared.size:
        raise ValueError(f"RecordID(s) {shared[:5].tolist()} appear in more than one set in {folder}.")


def _descr(n_records, n_deaths, n_steps, splits_note):
    return f"""PhysioNet/Computing in Cardiology Challenge 2012: in-hospital mortality of ICU patients
-----------------------------------------------------------------------------------

{n_records} ICU stays (sets a, b and c), the first 48 hours after admission, irregularly
sampled; {n_deaths} in-hospital deaths (target In-hospital_death).

data: float64 array (n_records, {len(FEATURE_NAMES)}, {n_steps}), channels first. Channel 0 is the
time in hours since admission (time_channel=0), channels 1-4 the static descriptors
Age, Gender, Height, ICUType (observed at time 0 only), channels 5-41 the 37
time-series variables. One step per distinct time stamp; NaN is missing; trailing
steps that are NaN in every channel are padding. -1 descriptors are NaN, repeated
(time, parameter) pairs are averaged, unknown parameter names are dropped with a
warning. {splits_note}

Source: https://physionet.org/content/challenge-2012/1.0.0/ (version 1.0.0).
License: Open Data Commons Attribution License v1.0.
Cite: Silva I, Moody G, Scott DJ, Celi LA, Mark RG. Predicting in-hospital mortality
of ICU patients: the PhysioNet/Computing in Cardiology Challenge 2012. Computing in
Cardiology 2012;39:245-248. Goldberger AL et al. PhysioBank, PhysioToolkit, and
PhysioNet. Circulation 2000;101(23):e215-e220.
"""


# Long by its docstring (about 140 lines: the Bunch's fields); the code (about 70 lines)
# reads, checks and assembles through the helpers above.
@validate_params(
    {
        "data_home": [str, os.PathLike, None],
        "download_if_missing": ["boolean"],
        "return_X_y": ["boolean"],
        "as_frame": ["boolean"],
        "verbose": ["verbose"],
        "base_url": [str],
    },
    prefer_skip_nested_validation=True,
)
def fetch_physionet2012(
    *,
    data_home=None,
    download_if_missing=True,
    return_X_y=False,
    as_frame=False,
    verbose=True,
    base_url=BASE_URL,
):
    """Load the PhysioNet 2012 ICU mortality data (12,000 stays), downloading it if needed.

    Irregularly sampled multivariate charts of the first 48 hours in the ICU,
    with in-hospital death as the binary target. See the module
    :mod:`mrmoe_sklearn.datasets._physionet` for the files, the parsing rules
    and the checks in full.

    ================= ==================================================
    Records           12,000 (sets a, b, c of 4,000)
    Classes           2 (1,707 in-hospital deaths, 14.2%)
    Channels          42: Time, 4 static descriptors, 37 time series
    Time steps        up to 215 distinct time stamps a record
    ================= ==================================================

    Parameters
    ----------
    data_home : str, path-like or None, default=None
        Folder whose ``physionet2012/`` subfolder holds (or will hold) the
        files: the folder *above* ``physionet2012/`` (for
        ``/data/physionet2012/set-a.tar.gz`` pass ``"/data"``). None or ``""``
        (both: not given): the environment variable ``MRMOE_SKLEARN_DATA``,
        else ``~/mrmoe_sklearn_data`` (see :func:`get_data_home`); an empty
        value never means the current folder (pass ``"."`` for that). A
        ``data_home`` that is a file (or holds a file named ``physionet2012``)
        raises a ``ValueError``.
    download_if_missing : bool, default=True
        Download missing archives and Outcomes files from ``base_url``. If
        False, missing files raise an ``OSError``. ``splits.csv`` is never
        downloaded (it is not on PhysioNet). A failed or interrupted download
        keeps no part of its file, and the folders the call created for it
        are removed again where nothing was kept in them.
    return_X_y : bool, default=False
        Return ``(data, target)`` instead of a Bunch; with ``as_frame=True``
        ``(frame, target)`` where ``target`` is a Series indexed by RecordID.
    as_frame : bool, default=False
        Add ``frame``, the long table of every observation, to the Bunch.
    verbose : bool or int, default=True
        Print the progress of downloads to stderr. Nothing is printed when
        the files are already there.
    base_url : str, default=BASE_URL
        Where missing files are downloaded from
        (``https://physionet.org/files/challenge-2012/1.0.0/``); a mirror or a
        local server. Must be an ``http``, ``https``, ``ftp`` or ``file`` URL
        (checked even when nothing is missing).

    Returns
    -------
    data : Bunch
        Dictionary-like object with the fields:

        data : ndarray of shape (n_records, 42, n_timesteps)
            float64, channels first: ``Time`` (hours since admission), the
            static descriptors ``Age``, ``Gender``, ``Height``, ``ICUType``
            (at time 0 only), then the 37 time-series variables; NaN where
            not measured and as end padding. Use ``time_channel=0``.
        target : ndarray of shape (n_records,)
            In-hospital death, 0 or 1 (int).
        record_ids : ndarray of shape (n_records,)
            RecordIDs in the order of ``data`` (ascending).
        feature_names : list of str
            The 42 channel names, ``"Time"`` first.
        time_channel : int
            0, the index of the time channel.
        static_features : list of str
            ``["Age", "Gender", "Height", "ICUType"]``.
        descriptors : pandas.DataFrame
            Indexed by RecordID: ``Age``, ``Gender``, ``Height``, ``ICUType``
            and ``Weight`` at 00:00, NaN where unknown (``-1``).
        outcomes : pandas.DataFrame
            Indexed by RecordID: ``SAPS-I``, ``SOFA``, ``Length_of_stay``,
            ``Survival``, ``In-hospital_death`` as in the Outcomes files (``-1``
            kept: score not available / no recorded death), and ``set``
            (``"a"``, ``"b"`` or ``"c"``).
        splits : pandas.DataFrame or None
            Indexed by RecordID: ``split1`` ... ``split5`` with ``"train"``,
            ``"val"`` or ``"test"``; None for the stays absent from
            ``splits.csv`` (the 12 without measurements). None altogether when
            ``splits.csv`` is not in the folder. See :func:`physionet2012_split`.
        frame : pandas.DataFrame
            Only with ``as_frame=True``: one row per observation, columns
            ``RecordID``, ``Time`` (hours, float), ``Parameter``, ``Value``,
            descriptors included (unknown ones and RecordID rows left out),
            sorted by RecordID and time, repeated observations kept.
            ``mrmoe_sklearn.to_sequences(frame, "RecordID", "Time",
            value_cols=feature_names[1:], var_col="Parameter",
            value_col="Value")`` gives ``data`` back (averaging the repeats),
            except that a record with nothing known at 00:00 (none in the
            real files) loses its empty first step there.
        DESCR : str
            Description, license and citation.

    (data, target) : tuple if ``return_X_y`` is True

    Raises
    ------
    OSError
        A file is missing and ``download_if_missing=False``, or its download
        fails (the message names the folder searched and the files not found
        there, then why the download failed, and points out a ``data_home``
        that looks one level off: a folder named ``physionet2012``, or the
        files found just above or below it); or an archive is truncated or
        damaged.
    ValueError
        ``data_home`` is a file or ``base_url`` is not a URL (the message names
        the parameter), a file's content is malformed, or the record files and
        the Outcomes files do not match (the message names the files).

    Warns
    -----
    UserWarning
        When rows with parameter names outside the 37 variables and the
        descriptors are dropped (the real files hold 2,403 rows with an empty
        name).

    See Also
    --------
    physionet2012_split : Train/validation/test indices of a published split.
    mrmoe_sklearn.to_sequences : The same layout from a long DataFrame.

    Notes
    -----
    Loading the real files took 13 s wall-clock (8.6 s CPU) in a fresh process
    and 6.5 s when repeated, on a busy 2-core machine; no parsed copy is
    cached. The array takes about 870 MB, the peak during a load about 1.9 GB.

    Examples
    --------
    >>> from mrmoe_sklearn.datasets import fetch_physionet2012, physionet2012_split
    >>> ds = fetch_physionet2012()  # doctest: +SKIP
    >>> ds.data.shape  # doctest: +SKIP
    (12000, 42, 215)
    >>> ds.feature_names[:6]  # doctest: +SKIP
    ['Time', 'Age', 'Gender', 'Height', 'ICUType', 'Albumin']
    >>> int(ds.target.sum())  # doctest: +SKIP
    1707
    >>> train, val, test = physionet2012_split(ds, 1)  # doctest: +SKIP
    >>> len(train), len(val), len(test)  # doctest: +SKIP
    (9590, 1199, 1199)
    """
    import pandas as pd

    _check_base_url(base_url)
    home = Path(get_data_home(data_home))
    folder = home / _SUBFOLDER
    _check_data_home(data_home, home, folder)
    outcomes, archives = _obtain_or_explain(home, download_if_missing, base_url, verbose)
    _verify(outcomes, archives, folder)

    dropped = sum((archives[s][2] for s in SETS), Counter())
    if dropped:
        listed = ", ".join(f"{name!r} ({count})" for name, count in dropped.most_common())
        warnings.warn(
            f"Dropped {sum(dropped.values())} row(s) of the PhysioNet 2012 records in {folder} whose "
            f"parameter is not one of the 37 time-series variables or a descriptor at 00:00: {listed}.",
            UserWarning,
            stacklevel=3,  # the caller of fetch_physionet2012, past validate_params' wrapper
        )

    record_ids = np.sort(np.concatenate([np.asarray(archives[s][0], dtype=np.int64) for s in SETS]))
    owner, minutes, channels, values = (np.concatenate([archives[s][1][k] for s in SETS]) for k in range(4))
    record_index = np.searchsorted(record_ids, owner)
    del archives
    splits_path = folder / _SPLITS_FILE
    splits = _read_splits(splits_path, record_ids) if splits_path.is_file() else None
    table = pd.concat([outcomes[s].assign(set=s) for s in SETS]).reindex(record_ids)
    table.index.name = "RecordID"
    target = table["In-hospital_death"].to_numpy(dtype=np.int64)
    ids_index = pd.Index(record_ids, name="RecordID")

    if as_frame:
        order = np.lexsort((minutes, record_index))
        frame = pd.DataFrame(
            {
                "RecordID": record_ids[record_index[order]],
                "Time": minutes[order] / 60.0,
                "Parameter": np.asarray(FEATURE_NAMES, dtype=object)[channels[order]],
                "Value": values[order],
            }
        )
        if return_X_y:
            return frame, pd.Series(target, index=ids_index, name="In-hospital_death")
    data = _dense(record_index, minutes, channels, values, len(record_ids))
    if return_X_y:
        return data, target
    first = data[:, [_CHANNEL[n] for n in STATIC_FEATURES + ("Weight",)], 0]
    descriptors = pd.DataFrame(first, index=ids_index, columns=list(STATIC_FEATURES) + ["Weight"])
    splits_note = (
        f"splits: {splits.shape[1]} train/val/test splits from {_SPLITS_FILE}."
        if splits is not None
        else f"splits: None ({_SPLITS_FILE} is not in {folder}; it is not on PhysioNet)."
    )
    bunch = Bunch(
        data=data,
        target=target,
        record_ids=record_ids,
        feature_names=list(FEATURE_NAMES),
        time_channel=0,
        static_features=list(STATIC_FEATURES),
        descriptors=descriptors,
        outcomes=table,
        splits=splits,
        DESCR=_descr(len(record_ids), int(target.sum()), data.shape[2], splits_note),
    )
    if as_frame:
        bunch.frame = frame
    return bunch


@validate_params({"bunch": [Bunch], "split": "no_validation"}, prefer_skip_nested_validation=True)
def physionet2012_split(bunch, split):
    """Indices of one published train/validation/test split of PhysioNet 2012.

    Parameters
    ----------
    bunch : Bunch
        The result of :func:`fetch_physionet2012` (its ``splits`` and
        ``record_ids``).
    split : int
        Which split, from 1 to the number of split columns (5 in
        ``splits.csv``).

    Returns
    -------
    train, val, test : ndarray of int
        Row indices into ``bunch.data`` and ``bunch.target``, ascending. Stays
        that ``splits.csv`` leaves out (the 12 without measurements) are in
        none of them.

    Raises
    ------
    ValueError
        ``split`` is not an int from 1 to the number of splits (the message
        gives that range: ``[1, 5]`` with the published ``splits.csv``, and
        ``[1, inf)`` for a Bunch without splits), or ``bunch.splits`` is None
        (``splits.csv`` was not in the data folder).

    Examples
    --------
    >>> from mrmoe_sklearn.datasets import fetch_physionet2012, physionet2012_split
    >>> ds = fetch_physionet2012()  # doctest: +SKIP
    >>> train, val, test = physionet2012_split(ds, 1)  # doctest: +SKIP
    >>> X_train, y_train = ds.data[train], ds.target[train]  # doctest: +SKIP
    """
    splits = bunch.get("splits")
    n_splits = None if splits is None else splits.shape[1]
    allowed = IntInterval(1) if n_splits is None else IntInterval(1, n_splits, closed="both")
    if not allowed.is_satisfied_by(split):
        raise invalid_parameter("split", "physionet2012_split", str(allowed), split)
    if splits is None:
        raise ValueError(
            f"This PhysioNet 2012 Bunch has no splits: {_SPLITS_FILE} (RecordID,split1..split5 with "
            "train/val/test, the Raindrop split list) was not in the data folder when it was loaded. "
            "It is not on PhysioNet; put it into <data_home>/physionet2012/ and load again."
        )
    if not np.array_equal(splits.index.to_numpy(), np.asarray(bunch.record_ids)):
        raise ValueError("bunch.splits is not indexed by bunch.record_ids in order.")
    column = splits[f"split{split}"].to_numpy()
    return tuple(np.flatnonzero(column == part) for part in _SPLIT_VALUES)
