"""Tests for :func:`mrmoe_sklearn.datasets.fetch_physionet2012`.

Three parts: small data that the tests write in PhysioNet's own format (the
rules of the reader, its checks and its errors), downloads over a loopback
HTTP server, and the real files in ``../shared/data/physionet2012`` where
they are present.
"""

import contextlib
import functools
import http.server
import io
import re
import shutil
import tarfile
import threading
import urllib.error
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from mrmoe_sklearn import to_sequences
from mrmoe_sklearn.datasets import _physionet, fetch_physionet2012, get_data_home, physionet2012_split

TIME_SERIES = [
    "Albumin", "ALP", "ALT", "AST", "Bilirubin", "BUN", "Cholesterol", "Creatinine",
    "DiasABP", "FiO2", "GCS", "Glucose", "HCO3", "HCT", "HR", "K", "Lactate", "Mg",
    "MAP", "MechVent", "Na", "NIDiasABP", "NIMAP", "NISysABP", "PaCO2", "PaO2", "pH",
    "Platelets", "RespRate", "SaO2", "SysABP", "Temp", "TroponinI", "TroponinT",
    "Urine", "WBC", "Weight",
]  # fmt: skip
FEATURES = ["Time", "Age", "Gender", "Height", "ICUType"] + TIME_SERIES
CH = {name: i for i, name in enumerate(FEATURES)}
FILES = [f"set-{s}.tar.gz" for s in "abc"] + [f"Outcomes-{s}.txt" for s in "abc"]


# ---------------------------------------------------------------------------
# Small data in the official format
# ---------------------------------------------------------------------------
def record(rid, rows=(), *, newline="\n", **descriptors):
    """The text of one record: header, descriptors at 00:00, then ``rows``."""
    desc = {"Age": 54, "Gender": 0, "Height": -1, "ICUType": 4, "Weight": -1, **descriptors}
    lines = ["Time,Parameter,Value", f"00:00,RecordID,{rid}"]
    lines += [f"00:00,{name},{value}" for name, value in desc.items()]
    lines += [",".join(map(str, row)) for row in rows]
    return newline.join(lines) + newline


# RecordID -> (record text, in-hospital death), per set.
SMALL = {
    "a": {
        # A stay with no measurement: only the descriptors (Gender unknown).
        # (Before 1001 in the archive: records are sorted by RecordID.)
        1002: (record(1002, Age=70, Gender=-1, Height=170.2, ICUType=2, Weight=60), 0),
        # CRLF line ends, a repeated time stamp, an unknown parameter whose
        # time stamp has nothing else, a later weight.
        1001: (
            record(
                1001,
                [
                    ("00:07", "GCS", 15),
                    ("00:07", "HR", 73),
                    ("00:37", "HR", 77),
                    ("01:00", "Foo", 3),
                    ("01:37", "HR", 80),
                    ("01:37", "HR", 82),
                    ("02:00", "Weight", 80.5),
                ],
                newline="\r\n",
            ),
            0,
        ),
    },
    "b": {
        # Two weights at 00:00, a series at 00:00, blank lines, a negative value
        # kept as charted, a descriptor charted late (dropped).
        2001: (
            record(
                2001,
                [
                    ("00:00", "Weight", 70.4),
                    ("00:00", "HR", 90),
                    ("", "", ""),
                    ("05:30", "Temp", -17.8),
                    ("03:00", "Age", 82),
                    ("10:00", "MechVent", 1),
                    ("47:59", "Urine", 120),
                ],
                Age=81,
                Gender=1,
                Height=160,
                ICUType=3,
                Weight=70.8,
            ).replace(",,\n", "\n\n"),
            1,
        ),
    },
    "c": {
        # The longest record (9 steps); two series at one time stamp.
        3001: (
            record(
                3001,
                [
                    ("00:30", "HR", 100),
                    ("01:00", "HR", 101),
                    ("01:00", "pH", 7.35),
                    ("01:00", "FiO2", 0.5),
                    ("01:30", "HR", 102),
                    ("02:00", "HR", 103),
                    ("02:30", "HR", 104),
                    ("03:00", "HR", 105),
                    ("03:30", "HR", 106),
                    ("04:00", "HR", 107),
                ],
                Age=45,
                Height=180.3,
                ICUType=1,
                Weight=95,
            ),
            0,
        ),
        3002: (record(3002, [("12:00", "Lactate", 2.1)], Age=66, Gender=1, ICUType=2), 1),
    },
}
IDS = [1001, 1002, 2001, 3001, 3002]
SPLITS = (
    "RecordID,split1,split2,split3,split4,split5\n"
    "1001,train,train,test,train,val\n"
    "2001,val,train,train,test,train\n"
    "3001,test,val,train,train,train\n"
    "3002,train,test,val,val,test\n"
)


def write_archive(path, s, records):
    """A ``set-<s>.tar.gz`` with a directory member and one member a record."""
    with tarfile.open(path, "w:gz") as tar:
        folder = tarfile.TarInfo(f"set-{s}")
        folder.type = tarfile.DIRTYPE
        tar.addfile(folder)
        for rid, text in records.items():
            raw = text if isinstance(text, bytes) else text.encode()
            info = tarfile.TarInfo(f"set-{s}/{rid}.txt")
            info.size = len(raw)
            tar.addfile(info, io.BytesIO(raw))


def write_outcomes(path, deaths):
    rows = ["RecordID,SAPS-I,SOFA,Length_of_stay,Survival,In-hospital_death"]
    rows += [
        f"{rid},{10 + i},{-1 if i == 0 else i},{5 + i},{-1 if not d else 3},{d}"
        for i, (rid, d) in enumerate(deaths.items())
    ]
    Path(path).write_text("\n".join(rows) + "\n")


def write_data(folder, sets=SMALL, splits=SPLITS):
    """Write the files of ``sets`` (and ``splits`` unless None) into ``folder``."""
    folder.mkdir(parents=True, exist_ok=True)
    for s, records in sets.items():
        write_archive(folder / f"set-{s}.tar.gz", s, {rid: text for rid, (text, _) in records.items()})
        write_outcomes(folder / f"Outcomes-{s}.txt", {rid: d for rid, (_, d) in records.items()})
    if splits is not None:
        (folder / "splits.csv").write_text(splits)
    return folder


def load(data_home, **kwargs):
    """fetch_physionet2012 on test data, the expected warning about dropped rows checked."""
    kwargs = {"download_if_missing": False, "verbose": False, **kwargs}
    with pytest.warns(UserWarning, match=r"'Foo' \(1\).*'Age after 00:00' \(1\)|'Age after 00:00' \(1\).*'Foo' \(1\)"):
        return fetch_physionet2012(data_home=data_home, **kwargs)


def fetch_quietly(data_home, **kwargs):
    """fetch_physionet2012 on test data that is expected to fail; warnings ignored."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return fetch_physionet2012(data_home=data_home, download_if_missing=False, verbose=False, **kwargs)


@pytest.fixture(scope="module")
def small_home(tmp_path_factory):
    """A data_home holding the small data (not to be modified)."""
    home = tmp_path_factory.mktemp("home")
    write_data(home / "physionet2012")
    return home


@pytest.fixture(scope="module")
def small(small_home):
    return load(small_home)


@pytest.fixture
def home_copy(small_home, tmp_path):
    """A data_home with a copy of the small data, to modify."""
    shutil.copytree(small_home / "physionet2012", tmp_path / "physionet2012")
    return tmp_path


def test_layout(small):
    assert small.feature_names == FEATURES and len(FEATURES) == 42
    assert small.time_channel == 0
    assert small.static_features == ["Age", "Gender", "Height", "ICUType"]
    assert small.data.dtype == np.float64 and small.data.shape == (5, 42, 9)
    assert small.record_ids.tolist() == IDS and small.record_ids.dtype.kind == "i"
    assert small.target.tolist() == [0, 0, 1, 0, 1] and small.target.dtype.kind == "i"
    steps = (~np.isnan(small.data[:, 0])).sum(axis=1)
    assert steps.tolist() == [5, 1, 4, 9, 2]
    for i, n in enumerate(steps):  # padding: NaN in every channel, the time channel included
        assert np.isnan(small.data[i, :, n:]).all()
        assert (np.diff(small.data[i, 0, :n]) > 0).all() and small.data[i, 0, 0] == 0
    # the static descriptors are observed at the first step only
    assert np.isnan(small.data[:, 1:5, 1:]).all()


def test_values(small):
    X = small.data
    a1, a2, b1, c1, c2 = range(5)
    np.testing.assert_allclose(X[a1, 0, :5], [0, 7 / 60, 37 / 60, 97 / 60, 2])  # 01:00 held only 'Foo'
    np.testing.assert_array_equal(X[a1, 1:5, 0], [54, 0, np.nan, 4])  # Height -1 -> NaN
    assert np.isnan(X[a1, CH["Weight"], 0]) and X[a1, CH["Weight"], 4] == 80.5  # Weight -1 -> NaN
    np.testing.assert_array_equal(X[a1, CH["HR"], :5], [np.nan, 73, 77, 81, np.nan])  # 80 and 82 averaged
    assert X[a1, CH["GCS"], 1] == 15 and np.isnan(X[a1, CH["GCS"], [0, 2, 3, 4]]).all()
    # the stay without measurements: one step at time 0 with its descriptors
    np.testing.assert_array_equal(X[a2, :5, 0], [0, 70, np.nan, 170.2, 2])
    assert X[a2, CH["Weight"], 0] == 60 and np.isnan(X[a2, 5:-1]).all()
    # two weights at 00:00 averaged; a series at 00:00; a late 'Age' dropped
    np.testing.assert_allclose(X[b1, 0, :4], [0, 5.5, 10, 47 + 59 / 60])
    assert X[b1, CH["Weight"], 0] == pytest.approx(70.6) and X[b1, CH["HR"], 0] == 90
    assert X[b1, CH["Age"], 0] == 81 and X[b1, CH["Temp"], 1] == -17.8  # kept as charted
    assert X[b1, CH["MechVent"], 2] == 1 and X[b1, CH["Urine"], 3] == 120
    np.testing.assert_allclose(X[c1, 0], np.arange(9) / 2)
    np.testing.assert_array_equal(X[c1, CH["HR"]], [np.nan, 100, 101, 102, 103, 104, 105, 106, 107])
    assert X[c1, CH["pH"], 2] == 7.35 and X[c1, CH["FiO2"], 2] == 0.5
    assert X[c2, CH["Lactate"], 1] == 2.1 and X[c2, 0, 1] == 12
    observed = ~np.isnan(X[:, 1:])
    assert observed.sum(axis=(1, 2)).tolist() == [8, 4, 9, 15, 4]  # nothing invented


def test_descriptors_outcomes_splits(small):
    d = small.descriptors
    assert d.index.tolist() == IDS and d.index.name == "RecordID"
    assert d.columns.tolist() == ["Age", "Gender", "Height", "ICUType", "Weight"]
    np.testing.assert_array_equal(d.loc[1002], [70, np.nan, 170.2, 2, 60])
    assert np.isnan(d.loc[1001, "Weight"]) and d.loc[2001, "Weight"] == pytest.approx(70.6)
    o = small.outcomes
    assert o.index.tolist() == IDS
    assert o.columns.tolist() == ["SAPS-I", "SOFA", "Length_of_stay", "Survival", "In-hospital_death", "set"]
    assert o["set"].tolist() == ["a", "a", "b", "c", "c"]
    assert o.loc[1002, "SOFA"] == -1 and o.loc[2001, "Survival"] == 3  # as in the file
    np.testing.assert_array_equal(o["In-hospital_death"], small.target)
    sp = small.splits
    assert sp.index.tolist() == IDS and sp.columns.tolist() == [f"split{k}" for k in range(1, 6)]
    assert sp.loc[1002].isna().all()  # absent from splits.csv
    assert sp.loc[3002].tolist() == ["train", "test", "val", "val", "test"]
    assert "Open Data Commons Attribution" in small.DESCR and "Silva" in small.DESCR
    assert "Goldberger" in small.DESCR and "frame" not in small


def test_split_helper(small):
    train, val, test = physionet2012_split(small, 1)
    assert train.tolist() == [0, 4] and val.tolist() == [2] and test.tolist() == [3]
    train, val, test = physionet2012_split(small, 5)
    assert train.tolist() == [2, 3] and val.tolist() == [0] and test.tolist() == [4]
    for bad in (0, 6, 1.0, "split1", True):
        with pytest.raises(ValueError, match="The 'split' parameter of physionet2012_split must be an int in the"):
            physionet2012_split(small, bad)


@pytest.mark.parametrize("bad", [0, -1, 6, 60, 1.0, "split1", True, None])
def test_split_out_of_range_names_the_same_range(small, bad):
    """Below 1 and above the number of splits alike, the message gives the range [1, 5]."""
    expected = f"The 'split' parameter of physionet2012_split must be an int in the range [1, 5]. Got {bad!r} instead."
    with pytest.raises(ValueError) as info:
        physionet2012_split(small, bad)
    assert str(info.value) == expected


def test_without_splits_file(home_copy):
    (home_copy / "physionet2012" / "splits.csv").unlink()
    ds = load(home_copy)
    assert ds.splits is None and "splits.csv is not in" in ds.DESCR
    with pytest.raises(ValueError, match="splits.csv.*not on PhysioNet"):
        physionet2012_split(ds, 1)


@pytest.mark.parametrize(
    "text, match",
    [
        ("RecordID,split1\n1001,train\n1001,val\n", "appears twice"),
        ("RecordID,split1\n1001,training\n", "other than train, val and test"),
        ("RecordID,split1\n9999,train\n", r"\[9999\] have no record"),
        ("RecordID,fold1\n1001,train\n", "expected the columns"),
        ("RecordID,split1\n1001,\n", "empty cells"),
    ],
)
def test_bad_splits_file(home_copy, text, match):
    path = home_copy / "physionet2012" / "splits.csv"
    path.write_text(text)
    with pytest.raises(ValueError, match=match) as info:
        fetch_quietly(home_copy)
    assert str(path) in str(info.value) and "replace it" in str(info.value)


def test_as_frame_round_trip(small_home, small):
    ds = load(small_home, as_frame=True)
    frame = ds.frame
    assert frame.columns.tolist() == ["RecordID", "Time", "Parameter", "Value"]
    assert frame["Time"].dtype == np.float64 and frame["Value"].dtype == np.float64
    assert not frame["Value"].isna().any()  # unknown descriptors are left out
    assert set(frame["Parameter"]) <= set(FEATURES[1:]) and "RecordID" not in set(frame["Parameter"])
    assert frame.groupby("RecordID").size().tolist() == [9, 4, 10, 15, 4]  # repeats kept
    assert frame.equals(frame.sort_values(["RecordID", "Time"], kind="stable"))
    X, ids, names = to_sequences(frame, "RecordID", "Time", var_col="Parameter", value_col="Value")
    assert ids.tolist() == IDS
    np.testing.assert_array_equal(X[:, 0], ds.data[:, 0])
    np.testing.assert_allclose(X[:, 1:], ds.data[:, [CH[n] for n in names]])
    unused = [c for c in range(1, 42) if FEATURES[c] not in names]
    assert np.isnan(ds.data[:, unused]).all()
    np.testing.assert_array_equal(ds.data, small.data)


def test_return_X_y(small_home, small):
    X, y = load(small_home, return_X_y=True)
    np.testing.assert_array_equal(X, small.data)
    np.testing.assert_array_equal(y, small.target)
    frame, y = load(small_home, return_X_y=True, as_frame=True)
    assert isinstance(frame, pd.DataFrame) and isinstance(y, pd.Series)
    assert y.index.tolist() == IDS and y.name == "In-hospital_death" and y.tolist() == small.target.tolist()


def test_fast_and_exact_parsers_agree(small_home):
    for s in SMALL:
        with tarfile.open(small_home / "physionet2012" / f"set-{s}.tar.gz") as tar:
            members = [(int(m.name[6:-4]), m.name, tar.extractfile(m).read()) for m in tar if m.isfile()]
        fast, dropped_fast = _physionet._parse_fast(members)  # clean records: no fallback
        exact, dropped_exact = _physionet._parse_exact(members, "x")
        for a, b in zip(fast, exact):
            np.testing.assert_array_equal(a, b)
            assert a.dtype == b.dtype
        assert dropped_fast == dropped_exact


def test_quoted_fields_read_the_same_by_both_parsers():
    # the fast parser must not apply CSV quoting that the exact one does not: what a record
    # holds may not depend on whether another record of its archive forces the fallback
    members = [(7, "set-a/7.txt", record(7, [("00:10", '"HR"', 70), ("00:20", "HR", 71)]).encode())]
    fast, dropped_fast = _physionet._parse_fast(members)
    exact, dropped_exact = _physionet._parse_exact(members, "x")
    for a, b in zip(fast, exact):
        np.testing.assert_array_equal(a, b)
    assert dropped_fast == dropped_exact == {'"HR"': 1}


def test_irregular_lines_fall_back_to_the_exact_parser(home_copy, small):
    # whitespace-only lines and spaces around fields: beyond the fast path
    sets = {s: dict(records) for s, records in SMALL.items()}
    text, death = sets["c"][3001]
    sets["c"][3001] = (text.replace("00:30,HR,100\n", "  \n 00:30 , HR , 100 \n\t\n"), death)
    members = [(3001, "set-c/3001.txt", sets["c"][3001][0].encode())]
    with pytest.raises(_physionet._Irregular):
        _physionet._parse_fast(members)
    write_data(home_copy / "physionet2012", sets)
    np.testing.assert_array_equal(load(home_copy).data, small.data)


def test_unknown_parameters_warn(small_home):
    with pytest.warns(UserWarning, match=r"Dropped 2 row\(s\).*'Foo' \(1\)") as record:
        fetch_physionet2012(data_home=small_home, download_if_missing=False)
    assert sum("Dropped" in str(w.message) for w in record) == 1


def test_no_warning_for_clean_data(tmp_path):
    sets = {"a": {1: (record(1, [("00:10", "HR", 70)]), 0)}, "b": {2: (record(2), 1)}, "c": {3: (record(3), 0)}}
    write_data(tmp_path / "physionet2012", sets, splits=None)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        ds = fetch_physionet2012(data_home=tmp_path, download_if_missing=False)
    assert ds.data.shape == (3, 42, 2) and ds.splits is None


def test_first_step_without_known_descriptor(tmp_path):
    """Time 0 is a step even where nothing known is charted then."""
    unknown = dict(Age=-1, Gender=-1, Height=-1, ICUType=-1, Weight=-1)
    sets = {
        "a": {1: (record(1, [("01:00", "HR", 70)], **unknown), 0)},
        "b": {2: (record(2), 1)},
        "c": {3: (record(3), 0)},
    }
    write_data(tmp_path / "physionet2012", sets, splits=None)
    ds = fetch_physionet2012(data_home=tmp_path, download_if_missing=False)
    np.testing.assert_array_equal(ds.data[0, 0], [0, 1])
    assert np.isnan(ds.data[0, 1:, 0]).all() and ds.data[0, CH["HR"], 1] == 70
    assert ds.descriptors.loc[1].isna().all()


def test_record_stored_twice(home_copy):
    path = home_copy / "physionet2012" / "set-c.tar.gz"
    records = {rid: text for rid, (text, _) in SMALL["c"].items()}
    with tarfile.open(path, "w:gz") as tar:
        for rid in [3001, 3002, 3001]:
            raw = records[rid].encode()
            info = tarfile.TarInfo(f"set-c/{rid}.txt")
            info.size = len(raw)
            tar.addfile(info, io.BytesIO(raw))
    with pytest.raises(
        ValueError, match=r"set-c.tar.gz is not a valid PhysioNet 2012 file: RecordID\(s\) \[3001\] stored twice"
    ):
        fetch_quietly(home_copy)


def _cases():
    """(file, how to break it, error class, message pattern)."""
    rec = SMALL["a"][1001][0]
    return {
        "outcomes row without record": (
            "Outcomes-a.txt",
            lambda t: t + "1003,1,1,1,-1,0\n",
            ValueError,
            r"1 Outcomes row\(s\) without a record file \[1003\]",
        ),
        "outcomes cut short": (
            "Outcomes-a.txt",
            lambda t: t[: t.rindex(",")],
            ValueError,
            "non-integer values.*cut short",
        ),
        "outcomes bad header": (
            "Outcomes-a.txt",
            lambda t: t.replace("SAPS-I", "SAPS"),
            ValueError,
            "expected the columns",
        ),
        "outcomes bad death": ("Outcomes-c.txt", lambda t: t.replace(",1\n", ",2\n"), ValueError, "other than 0 and 1"),
        "outcomes empty": ("Outcomes-b.txt", lambda t: "", ValueError, "cannot be read as CSV"),
        "record without outcomes row": (
            "Outcomes-c.txt",
            lambda t: t.replace(t.splitlines()[-1] + "\n", ""),
            ValueError,
            r"1 record file\(s\) without an Outcomes row \[3002\]",
        ),
        "malformed line": (
            "a:1001",
            lambda t: t.replace("00:37,HR,77", "00:37,HR,77,3"),
            ValueError,
            r"member set-a/1001.txt, line 10: cannot read '00:37,HR,77,3'",
        ),
        "bad time": ("a:1001", lambda t: t.replace("00:37,HR", "00:77,HR"), ValueError, "line 10: cannot read"),
        "bad value": (
            "a:1001",
            lambda t: t.replace("00:37,HR,77", "00:37,HR,high"),
            ValueError,
            "line 10: cannot read",
        ),
        "infinite value": ("a:1001", lambda t: t.replace("00:37,HR,77", "00:37,HR,inf"), ValueError, "line 10"),
        "bad header": (
            "a:1001",
            lambda t: t.replace("Time,Parameter,Value", "Time;Parameter;Value"),
            ValueError,
            "expected the header",
        ),
        "empty record file": ("a:1001", lambda t: "", ValueError, "expected the header.*an empty file"),
        "wrong RecordID": (
            "a:1001",
            lambda t: t.replace("RecordID,1001", "RecordID,1011"),
            ValueError,
            "RecordID 1011 differs from the file name",
        ),
        "not utf-8": ("a:1001", lambda t: t.encode().replace(b"GCS", b"G\xffS"), ValueError, "not UTF-8"),
    }, rec


@pytest.mark.parametrize("case", list(_cases()[0]))
def test_malformed_files(home_copy, case):
    target, breaker, error, match = _cases()[0][case]
    folder = home_copy / "physionet2012"
    if ":" in target:  # a record inside an archive
        s, rid = target.split(":")
        records = {r: text for r, (text, _) in SMALL[s].items()}
        records[int(rid)] = breaker(records[int(rid)])
        write_archive(folder / f"set-{s}.tar.gz", s, records)
        path = folder / f"set-{s}.tar.gz"
    else:
        path = folder / target
        path.write_text(breaker(path.read_text()))
    with pytest.raises(error, match=match) as info:
        fetch_quietly(home_copy)
    assert str(path) in str(info.value)
    assert "Delete" in str(info.value)
    assert path.exists()  # the user's files are never deleted


def test_truncated_local_archive(home_copy):
    path = home_copy / "physionet2012" / "set-b.tar.gz"
    raw = path.read_bytes()
    path.write_bytes(raw[: len(raw) // 2])
    with pytest.raises(OSError, match="set-b.tar.gz is not a valid PhysioNet 2012 file: the archive is truncated"):
        fetch_physionet2012(data_home=home_copy, download_if_missing=False)
    path.write_bytes(b"not a gzip file")
    with pytest.raises(OSError, match="set-b.tar.gz.*truncated or damaged.*Delete it"):
        fetch_physionet2012(data_home=home_copy, download_if_missing=False)


def test_archive_members_checked(home_copy):
    folder = home_copy / "physionet2012"
    records = {r: text for r, (text, _) in SMALL["b"].items()}
    write_archive(folder / "set-b.tar.gz", "a", records)  # members named set-a/
    with pytest.raises(ValueError, match="unexpected member 'set-a/2001.txt'"):
        fetch_quietly(home_copy)
    write_archive(folder / "set-b.tar.gz", "b", {})
    with pytest.raises(ValueError, match="set-b.tar.gz.*holds no record"):
        fetch_quietly(home_copy)


def test_record_in_two_sets(home_copy):
    sets = {s: dict(records) for s, records in SMALL.items()}
    sets["b"][1001] = (record(1001), 0)
    write_data(home_copy / "physionet2012", sets)
    with pytest.raises(ValueError, match=r"RecordID\(s\) \[1001\] appear in more than one set"):
        fetch_quietly(home_copy)


def test_official_counts_checked(tmp_path):
    """A set of the official size must hold the official number of deaths."""
    n, deaths = _physionet.OFFICIAL_COUNTS["a"]
    big = {rid: (record(rid), int(i < deaths)) for i, rid in enumerate(range(200001, 200001 + n))}
    sets = {"a": big, "b": {1: (record(1), 0)}, "c": {2: (record(2), 1)}}
    folder = write_data(tmp_path / "physionet2012", sets, splits=None)
    ds = fetch_physionet2012(data_home=tmp_path, download_if_missing=False)
    assert ds.data.shape == (n + 2, 42, 1) and ds.target.sum() == deaths + 1
    one_more = {**big, 200001 + n - 1: (big[200001 + n - 1][0], 1)}
    write_outcomes(folder / "Outcomes-a.txt", {rid: d for rid, (_, d) in one_more.items()})
    with pytest.raises(
        ValueError, match=f"official {n} records but {deaths + 1} in-hospital deaths instead of {deaths}"
    ):
        fetch_physionet2012(data_home=tmp_path, download_if_missing=False)


def test_missing_files_without_download(home_copy, tmp_path):
    folder = home_copy / "physionet2012"
    (folder / "set-c.tar.gz").unlink()
    (folder / "Outcomes-a.txt").unlink()
    with pytest.raises(OSError, match="set-c.tar.gz, Outcomes-a.txt not found in") as info:
        fetch_physionet2012(data_home=home_copy, download_if_missing=False)
    assert str(folder) in str(info.value)
    empty = tmp_path / "nothing"
    with pytest.raises(OSError, match="set-a.tar.gz, set-b.tar.gz, set-c.tar.gz, Outcomes-a.txt"):
        fetch_physionet2012(data_home=empty, download_if_missing=False)
    assert not empty.exists()  # nothing created


def test_data_home(monkeypatch, tmp_path, small_home):
    monkeypatch.setenv("MRMOE_SKLEARN_DATA", str(small_home))
    assert get_data_home() == str(small_home)
    assert get_data_home(tmp_path) == str(tmp_path)
    ds = load(None)  # the environment variable
    assert ds.data.shape == (5, 42, 9)
    monkeypatch.setenv("MRMOE_SKLEARN_DATA", "")
    monkeypatch.setenv("HOME", str(tmp_path))
    assert get_data_home() == str(tmp_path / "mrmoe_sklearn_data")
    with pytest.raises(OSError, match=str(tmp_path / "mrmoe_sklearn_data" / "physionet2012")):
        fetch_physionet2012(download_if_missing=False)


def test_empty_data_home_is_not_given(monkeypatch, tmp_path, small_home):
    """data_home="" is data_home=None (as an empty MRMOE_SKLEARN_DATA is unset), never the current folder."""
    monkeypatch.chdir(tmp_path)  # nothing in ./physionet2012
    monkeypatch.setenv("MRMOE_SKLEARN_DATA", str(small_home))
    assert get_data_home("") == str(small_home)
    assert load("").data.shape == (5, 42, 9)
    monkeypatch.setenv("MRMOE_SKLEARN_DATA", "")
    monkeypatch.setenv("HOME", str(tmp_path / "user"))
    assert get_data_home("") == get_data_home() == str(tmp_path / "user" / "mrmoe_sklearn_data")
    with pytest.raises(OSError, match=f"not found in {tmp_path / 'user' / 'mrmoe_sklearn_data' / 'physionet2012'}"):
        fetch_physionet2012(data_home="", download_if_missing=False)
    assert get_data_home(".") == "."  # the current folder, said so


@pytest.mark.parametrize("download_if_missing", [True, False])
@pytest.mark.parametrize("where", ["data_home", "subfolder", "above"])
def test_data_home_that_is_a_file(tmp_path, monkeypatch, where, download_if_missing):
    """A data_home that is a file (or holds one as physionet2012, or lies under one): a ValueError naming it."""
    home = tmp_path / "x" / "y" if where == "above" else tmp_path / "x"
    file = home / "physionet2012" if where == "subfolder" else tmp_path / "x"
    file.parent.mkdir(exist_ok=True)
    file.write_text("not a folder")
    before = tree(tmp_path)
    requested = fake_urlopen(monkeypatch)
    with pytest.raises(ValueError, match=r"The 'data_home' parameter of fetch_physionet2012 must be a folder") as info:
        fetch_physionet2012(data_home=str(home), download_if_missing=download_if_missing, verbose=False)
    assert f"Got {str(home)!r} instead: {file}" in str(info.value) and "is a file" in str(info.value)
    assert requested == [] and tree(tmp_path) == before


def test_data_home_from_the_environment_that_is_a_file(tmp_path, monkeypatch):
    (tmp_path / "file").write_text("not a folder")
    monkeypatch.setenv("MRMOE_SKLEARN_DATA", str(tmp_path / "file"))
    with pytest.raises(ValueError, match=f"The data folder {tmp_path / 'file'} .*MRMOE_SKLEARN_DATA.* is a file"):
        fetch_physionet2012(download_if_missing=False)


@pytest.mark.parametrize("base_url", ["notaurl", "", "physionet.org/files/challenge-2012/1.0.0/", "https:///x/"])
@pytest.mark.parametrize("download_if_missing", [True, False])
def test_base_url_that_is_not_a_url(tmp_path, monkeypatch, base_url, download_if_missing):
    requested = fake_urlopen(monkeypatch)
    with pytest.raises(ValueError, match="The 'base_url' parameter of fetch_physionet2012 must be") as info:
        fetch_physionet2012(data_home=tmp_path / "home", base_url=base_url, download_if_missing=download_if_missing)
    assert str(info.value).endswith(f"Got {base_url!r} instead.")
    assert requested == [] and list(tmp_path.iterdir()) == []


def test_download_from_a_file_url(small_home, small, tmp_path):
    """file: URLs are URLs (a mirror on a shared drive)."""
    ds = load(tmp_path, base_url=(small_home / "physionet2012").as_uri() + "/", download_if_missing=True)
    np.testing.assert_array_equal(ds.data, small.data)


# ---------------------------------------------------------------------------
# Downloads over loopback
# ---------------------------------------------------------------------------
class _Handler(http.server.SimpleHTTPRequestHandler):
    """Serves a folder; records the paths asked for; cuts ``cut`` short."""

    requested = None  # a list, set per server
    cut = None  # a file name whose body stops half way (Content-Length of the whole)

    def log_message(self, *args):
        pass

    def do_GET(self):
        self.requested.append(self.path)
        name = self.path.lstrip("/")
        if name != self.cut:
            return super().do_GET()
        raw = (Path(self.directory) / name).read_bytes()
        self.send_response(200)
        self.send_header("Content-Length", str(len(raw)))
        self.end_headers()
        self.wfile.write(raw[: len(raw) // 2])
        self.wfile.flush()
        self.close_connection = True


@contextlib.contextmanager
def serve(folder, cut=None):
    """An HTTP server on 127.0.0.1 serving ``folder``; yields (base_url, requested paths)."""
    handler = type("Handler", (_Handler,), {"requested": [], "cut": cut})
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(handler, directory=str(folder)))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/", handler.requested
    finally:
        server.shutdown()
        server.server_close()
        thread.join()


@pytest.fixture
def no_proxy(monkeypatch):
    for name in ("http_proxy", "HTTP_PROXY", "https_proxy", "HTTPS_PROXY", "all_proxy", "ALL_PROXY"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("no_proxy", "127.0.0.1,localhost")


def leftovers(folder):
    return sorted(p.name for p in folder.iterdir() if p.name.startswith(".") or p.suffix == ".part")


def test_download(small_home, small, tmp_path, no_proxy, capsys):
    home = tmp_path / "cache"
    with serve(small_home / "physionet2012") as (url, requested):
        with pytest.warns(UserWarning, match="'Foo'"):
            ds = fetch_physionet2012(data_home=home, base_url=url, verbose=True)
    folder = home / "physionet2012"
    assert sorted(requested) == sorted(f"/{name}" for name in FILES)  # splits.csv is not downloaded
    assert sorted(p.name for p in folder.iterdir()) == sorted(FILES) and not leftovers(folder)
    for name in FILES:
        assert (folder / name).read_bytes() == (small_home / "physionet2012" / name).read_bytes()
    np.testing.assert_array_equal(ds.data, small.data)
    np.testing.assert_array_equal(ds.target, small.target)
    assert ds.splits is None
    err = capsys.readouterr().err
    assert "Downloading set-a.tar.gz from" in err and "100%" in err
    # the second time from the cache, without a server
    np.testing.assert_array_equal(load(home).data, small.data)


def test_download_is_quiet_without_verbose(small_home, tmp_path, no_proxy, capsys):
    with serve(small_home / "physionet2012") as (url, _):
        load(tmp_path, base_url=url, download_if_missing=True, verbose=False)
    assert capsys.readouterr().err == ""


def test_download_of_only_the_missing_file(small_home, home_copy, small, no_proxy):
    folder = home_copy / "physionet2012"
    (folder / "Outcomes-b.txt").unlink()
    with serve(small_home / "physionet2012") as (url, requested):
        ds = load(home_copy, base_url=url, download_if_missing=True)
    assert requested == ["/Outcomes-b.txt"]
    np.testing.assert_array_equal(ds.data, small.data)


def test_download_of_a_truncated_archive(small_home, tmp_path, no_proxy):
    source = tmp_path / "source"
    shutil.copytree(small_home / "physionet2012", source)
    raw = (source / "set-b.tar.gz").read_bytes()
    (source / "set-b.tar.gz").write_bytes(raw[: len(raw) - 40])  # served whole, but cut off
    home = tmp_path / "cache"
    with serve(source) as (url, _):
        with pytest.raises(
            OSError,
            match=r"set-b.tar.gz downloaded from http://127.0.0.1:\d+/set-b.tar.gz is not a "
            r"valid PhysioNet 2012 file: the archive is truncated.*No part of it was kept",
        ):
            fetch_physionet2012(data_home=home, base_url=url, verbose=False)
    folder = home / "physionet2012"
    assert "set-b.tar.gz" not in {p.name for p in folder.iterdir()} and not leftovers(folder)


def test_download_cut_off_by_the_server(small_home, tmp_path, no_proxy):
    home = tmp_path / "cache"
    with serve(small_home / "physionet2012", cut="set-a.tar.gz") as (url, _):
        with pytest.raises(OSError, match=r"Could not download http://127.0.0.1:\d+/set-a.tar.gz"):
            fetch_physionet2012(data_home=home, base_url=url, verbose=False)
    folder = home / "physionet2012"
    assert "set-a.tar.gz" not in {p.name for p in folder.iterdir()} and not leftovers(folder)


def test_download_checked_before_it_is_renamed(small_home, tmp_path, no_proxy, monkeypatch):
    """The readers see the temporary file, not the final name (the rename is atomic and last)."""
    seen = []
    real_reader = _physionet._read_outcomes

    def spy(path, label):
        seen.append((Path(path).name, (Path(path).parent / "Outcomes-a.txt").exists()))
        return real_reader(path, label)

    monkeypatch.setattr(_physionet, "_read_outcomes", spy)
    with serve(small_home / "physionet2012") as (url, _):
        load(tmp_path, base_url=url, download_if_missing=True)
    first_name, final_existed = seen[0]
    assert first_name.startswith(".Outcomes-a.txt.") and first_name.endswith(".part")
    assert not final_existed
    assert (tmp_path / "physionet2012" / "Outcomes-a.txt").is_file()


def test_download_404(small_home, tmp_path, no_proxy):
    source = tmp_path / "source"
    shutil.copytree(small_home / "physionet2012", source)
    (source / "Outcomes-a.txt").unlink()
    home = tmp_path / "cache"
    with serve(source) as (url, _):
        with pytest.raises(OSError, match=r"Could not download http://127.0.0.1:\d+/Outcomes-a.txt: HTTP Error 404"):
            fetch_physionet2012(data_home=home, base_url=url, verbose=False)
    assert not home.exists()  # the first download failed: the folders made for it are gone


def test_downloaded_outcomes_checked_before_kept(small_home, tmp_path, no_proxy):
    source = tmp_path / "source"
    shutil.copytree(small_home / "physionet2012", source)
    (source / "Outcomes-a.txt").write_text("<html>Service unavailable</html>\n")
    home = tmp_path / "cache"
    with serve(source) as (url, _):
        with pytest.raises(
            ValueError, match="Outcomes-a.txt downloaded from .* expected the columns.*No part of it was kept"
        ):
            fetch_physionet2012(data_home=home, base_url=url, verbose=False)
    assert not home.exists()  # the first download: nothing kept, the folders made for it removed


# ---------------------------------------------------------------------------
# Failed and interrupted downloads, with urlopen replaced
# ---------------------------------------------------------------------------
class _Response(io.BytesIO):
    """What ``urlopen`` returns: the bytes, a Content-Length, and ``interrupt`` raised after the first chunk."""

    def __init__(self, raw, interrupt=None):
        super().__init__(raw)
        self.headers = {"Content-Length": str(len(raw))}
        self.interrupt = interrupt

    def read(self, size=-1):
        if self.interrupt is not None and self.tell() > 0:
            raise self.interrupt
        return super().read(min(size, 10) if self.interrupt is not None else size)


def fake_urlopen(monkeypatch, source=None, fail=(), interrupt=None):
    """Replace urlopen: the files of ``source``; URLError for the names in ``fail`` (all without ``source``).

    With ``interrupt``, each download raises it after its first 10 bytes. Returns the names asked for.
    """
    requested = []

    def urlopen(url, timeout=None):
        name = url.rsplit("/", 1)[1]
        requested.append(name)
        if source is None or name in fail:
            raise urllib.error.URLError("no network (test)")
        return _Response((source / name).read_bytes(), interrupt)

    monkeypatch.setattr(_physionet.urllib.request, "urlopen", urlopen)
    return requested


def tree(root):
    """Every folder and file under ``root``, relative, with the files' bytes."""
    return {str(p.relative_to(root)): p.read_bytes() if p.is_file() else None for p in sorted(root.rglob("*"))}


@pytest.mark.parametrize("existing", ["", "xyz", "xyz/nonexistent", "xyz/nonexistent/physionet2012"])
def test_failed_download_removes_only_the_folders_it_created(tmp_path, monkeypatch, existing):
    """With no network, the folders the call made are removed; those that were there stay, files untouched."""
    home = tmp_path / "xyz" / "nonexistent"
    if existing:
        (tmp_path / existing).mkdir(parents=True)
        (tmp_path / existing / "notes.txt").write_text("not ours")
    before = tree(tmp_path)
    requested = fake_urlopen(monkeypatch)
    with pytest.raises(OSError, match=r"Could not download .*/Outcomes-a.txt: .*no network \(test\)") as info:
        fetch_physionet2012(data_home=home, verbose=False)
    assert requested == ["Outcomes-a.txt"]
    assert tree(tmp_path) == before
    assert str(info.value).endswith("No part of Outcomes-a.txt was kept.")


def test_failed_download_keeps_the_files_downloaded_before(small_home, tmp_path, monkeypatch):
    """A failure part way keeps the checked files (and so their folders); the next call fetches the rest."""
    source = small_home / "physionet2012"
    home = tmp_path / "new" / "home"
    fake_urlopen(monkeypatch, source, fail={"set-b.tar.gz"})
    with pytest.raises(OSError, match=r"Could not download .*/set-b.tar.gz: .*No part of set-b.tar.gz was kept\."):
        fetch_physionet2012(data_home=home, verbose=False)
    folder = home / "physionet2012"
    kept = ["Outcomes-a.txt", "Outcomes-b.txt", "Outcomes-c.txt", "set-a.tar.gz"]
    assert sorted(p.name for p in folder.iterdir()) == kept  # no temporary file either
    assert all((folder / name).read_bytes() == (source / name).read_bytes() for name in kept)
    requested = fake_urlopen(monkeypatch, source)
    load(home, download_if_missing=True)
    assert requested == ["set-b.tar.gz", "set-c.tar.gz"]


@pytest.mark.parametrize("existing", [False, True])
def test_interrupted_download_leaves_nothing(small_home, tmp_path, monkeypatch, capsys, existing):
    """Ctrl-C part way through a download: no partial file, no folder made for it; the progress line ended."""
    home = tmp_path / "home"
    if existing:
        write_data(home / "physionet2012", splits=None)
        (home / "physionet2012" / "set-c.tar.gz").unlink()
    before = tree(tmp_path)
    fake_urlopen(monkeypatch, small_home / "physionet2012", interrupt=KeyboardInterrupt())
    with pytest.raises(KeyboardInterrupt):
        fetch_physionet2012(data_home=home, verbose=True)
    assert tree(tmp_path) == before
    err = capsys.readouterr().err
    assert "Downloading" in err and err.endswith("\n")


def test_download_cut_short_leaves_nothing(small_home, tmp_path, monkeypatch):
    """A connection lost part way (an OSError from read) keeps no partial file and no folder made for it."""
    fake_urlopen(monkeypatch, small_home / "physionet2012", interrupt=ConnectionResetError("reset (test)"))
    with pytest.raises(OSError, match=r"Could not download .*/Outcomes-a.txt: reset \(test\)\. No part of"):
        fetch_physionet2012(data_home=tmp_path / "home", verbose=False)
    assert list(tmp_path.iterdir()) == []


def test_folder_creation_failing_part_way(tmp_path, monkeypatch):
    """If a folder cannot be created, those created before it are removed again."""
    real_mkdir = Path.mkdir

    def mkdir(self, *args, **kwargs):  # refused for physionet2012/, once its parent is there
        if self.name == "physionet2012" and self.parent.is_dir():
            raise PermissionError(13, "Permission denied (test)", str(self))
        return real_mkdir(self, *args, **kwargs)

    monkeypatch.setattr(Path, "mkdir", mkdir)
    requested = fake_urlopen(monkeypatch)
    with pytest.raises(PermissionError, match="Permission denied"):
        fetch_physionet2012(data_home=tmp_path / "a" / "b", verbose=False)
    assert list(tmp_path.iterdir()) == [] and requested == []


def test_failed_download_says_what_was_searched_first(tmp_path, monkeypatch):
    """With downloading on, the error names the folder and the files not found there, then why the download failed."""
    home = tmp_path / "home"
    fake_urlopen(monkeypatch)
    with pytest.raises(OSError) as info:
        fetch_physionet2012(data_home=home, verbose=False)
    message = str(info.value)
    not_found = f"PhysioNet 2012 file(s) {', '.join(FILES)} not found in {home / 'physionet2012'}."
    assert message.startswith(not_found + f" Downloading them from {_physionet.BASE_URL} failed: Could not download ")
    assert message.endswith("/Outcomes-a.txt: <urlopen error no network (test)>. No part of Outcomes-a.txt was kept.")
    assert "did you mean" not in message  # nothing near it to point at
    # the same sentence as without downloading
    with pytest.raises(OSError, match=r"^" + re.escape(not_found) + " Pass download_if_missing=True"):
        fetch_physionet2012(data_home=home, download_if_missing=False)


def test_failed_download_names_only_the_missing_files(small_home, home_copy, monkeypatch):
    (home_copy / "physionet2012" / "set-c.tar.gz").unlink()
    (home_copy / "physionet2012" / "Outcomes-b.txt").unlink()
    fake_urlopen(monkeypatch, small_home / "physionet2012", fail={"set-c.tar.gz"})
    with pytest.raises(OSError) as info:
        fetch_physionet2012(data_home=home_copy, verbose=False)
    assert str(info.value).startswith(
        f"PhysioNet 2012 file(s) set-c.tar.gz, Outcomes-b.txt not found in {home_copy / 'physionet2012'}. "
        "Downloading them from"
    )
    assert "/set-c.tar.gz: <urlopen error no network (test)>" in str(info.value)
    assert str(info.value).endswith("Outcomes-b.txt, downloaded before, were kept.")


def _six_files(folder):
    folder.mkdir(parents=True, exist_ok=True)
    for name in FILES:
        (folder / name).write_bytes(b"")
    return folder


@pytest.mark.parametrize("download_if_missing", [True, False])
@pytest.mark.parametrize(
    "case",
    ["physionet2012 holding the files", "empty physionet2012", "files directly in data_home", "one level up",
     "one level down", "physionet2012 inside physionet2012"],
)  # fmt: skip
def test_hint_for_a_data_home_one_level_off(tmp_path, monkeypatch, case, download_if_missing):
    """data_home is the folder above physionet2012/: the error points at the folder meant, where it can tell."""
    if case == "physionet2012 holding the files":
        home, meant = _six_files(tmp_path / "data" / "physionet2012"), tmp_path / "data"
        expected = f"data_home={str(home)!r} is itself a folder named physionet2012 and holds all six"
    elif case == "empty physionet2012":
        home, meant = tmp_path / "data" / "physionet2012", tmp_path / "data"
        home.mkdir(parents=True)
        expected = f"data_home={str(home)!r} is itself a folder named physionet2012, but data_home is the folder above"
    elif case == "files directly in data_home":
        home, meant = _six_files(tmp_path / "data"), None
        expected = "holds all six PhysioNet 2012 files directly, but they are looked for in its subfolder physionet2012"
    elif case == "one level up":
        _six_files(tmp_path / "physionet2012")
        home, meant = tmp_path / "cache", tmp_path
        expected = f"{tmp_path / 'physionet2012'} holds all six PhysioNet 2012 files"
    elif case == "one level down":
        (tmp_path / "data" / "physionet2012").mkdir(parents=True)
        (tmp_path / "data" / "physionet2012" / "set-b.tar.gz").write_bytes(b"")  # some of them
        home, meant = tmp_path, tmp_path / "data"
        expected = f"{tmp_path / 'data' / 'physionet2012'} holds set-b.tar.gz:"
    else:
        _six_files(tmp_path / "physionet2012" / "physionet2012")
        home, meant = tmp_path, tmp_path / "physionet2012"
        expected = f"{tmp_path / 'physionet2012' / 'physionet2012'} holds all six PhysioNet 2012 files"
    before = tree(tmp_path)
    fake_urlopen(monkeypatch)
    with pytest.raises(OSError) as info:
        fetch_physionet2012(data_home=home, download_if_missing=download_if_missing, verbose=False)
    message = str(info.value)
    assert message.startswith(f"PhysioNet 2012 file(s) {', '.join(FILES)} not found in {home / 'physionet2012'}.")
    assert expected in message
    if meant is not None:
        assert f"did you mean data_home={str(meant)!r}?" in message
    if download_if_missing:
        assert message.index("no network (test)") < message.index(expected)  # the failure first, then the hint
    assert tree(tmp_path) == before  # the folder made for the download removed again


# ---------------------------------------------------------------------------
# The real files
# ---------------------------------------------------------------------------
# ../shared beside the repository (the repository's root is parents[1]).
REAL_HOME = Path(__file__).resolve().parents[2] / "shared" / "data"
EMPTY_STAYS = [140501, 140936, 141264, 142731, 142998, 143656, 145611, 147514, 150309, 150649, 155655, 156254]


@pytest.fixture(scope="module")
def real():
    if not all((REAL_HOME / "physionet2012" / name).is_file() for name in FILES + ["splits.csv"]):
        pytest.skip(f"the PhysioNet 2012 files are not in {REAL_HOME / 'physionet2012'}")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        ds = fetch_physionet2012(data_home=REAL_HOME, download_if_missing=False, as_frame=True)
    return ds, [str(w.message) for w in caught]


def test_real_counts(real):
    ds, caught = real
    assert ds.data.shape == (12000, 42, 215)
    assert ds.feature_names == FEATURES
    assert np.all(np.diff(ds.record_ids) > 0)
    assert int(ds.target.sum()) == 1707
    assert ds.outcomes.groupby("set")["In-hospital_death"].agg(["size", "sum"]).to_dict("list") == {
        "size": [4000, 4000, 4000],
        "sum": [554, 568, 585],
    }
    assert caught == [
        "Dropped 2403 row(s) of the PhysioNet 2012 records in "
        f"{REAL_HOME / 'physionet2012'} whose parameter is not one of the 37 time-series variables "
        "or a descriptor at 00:00: '' (2403)."
    ]


def test_real_layout(real):
    ds, _ = real
    steps = (~np.isnan(ds.data[:, 0])).sum(axis=1)
    assert steps.max() == 215
    assert ds.record_ids[steps == 1].tolist() == EMPTY_STAYS
    assert (ds.data[:, 0, 0] == 0).all()
    assert np.isnan(ds.data[:, 1:5, 1:]).all()
    assert not np.isnan(ds.data[:, CH["Age"], 0]).any()
    # unknown descriptors: Gender for 12 stays, Height for 5,726
    assert ds.descriptors.isna().sum()[["Age", "Gender", "Height", "ICUType"]].tolist() == [0, 12, 5726, 0]
    # each of the 37 variables is observed somewhere
    assert (~np.isnan(ds.data[:, 5:])).any(axis=(0, 2)).all()


def test_real_splits(real):
    ds, _ = real
    assert ds.splits.notna().all(axis=1).sum() == 11988
    assert ds.splits.loc[EMPTY_STAYS].isna().all().all()
    for k in range(1, 6):
        train, val, test = physionet2012_split(ds, k)
        assert (len(train), len(val), len(test)) == (9590, 1199, 1199)  # 80/10/10
        assert len(np.union1d(np.union1d(train, val), test)) == 11988
        rate = ds.target[test].mean()
        assert 0.10 < rate < 0.19


def test_real_frame_round_trip(real):
    """On the first 500 stays: to_sequences(frame) gives ``data`` back."""
    ds, _ = real
    ids = ds.record_ids[:500]
    part = ds.frame[ds.frame["RecordID"].isin(ids)]
    X, got_ids, _ = to_sequences(
        part, "RecordID", "Time", value_cols=ds.feature_names[1:], var_col="Parameter", value_col="Value"
    )
    np.testing.assert_array_equal(got_ids, ids)
    np.testing.assert_allclose(X, ds.data[:500, :, : X.shape[2]], rtol=1e-12)
    assert np.isnan(ds.data[:500, :, X.shape[2] :]).all()


def test_real_fast_parser_matches_the_exact_one():
    """On set-c (which holds the rows with an empty name), both parsers agree.

    About 7 s where the real files are there (skipped elsewhere), in the default run
    beside the other tests on the real files (``real``, a 13 s load).
    """
    path = REAL_HOME / "physionet2012" / "set-c.tar.gz"
    if not path.is_file():
        pytest.skip(f"{path} is not there")
    with tarfile.open(path) as tar:
        members = [(int(m.name[6:-4]), m.name, tar.extractfile(m).read()) for m in tar if m.isfile()]
    fast, dropped_fast = _physionet._parse_fast(members)
    exact, dropped_exact = _physionet._parse_exact(members, str(path))
    for a, b in zip(fast, exact):
        np.testing.assert_array_equal(a, b)
    assert dropped_fast == dropped_exact == {"": 2403}
