"""Data input of the comparison: ``.npz`` files, long-format tables, channel names."""

import os
from collections.abc import Hashable
from numbers import Integral

import numpy as np
import pandas as pd
from sklearn.utils._param_validation import validate_params

from .._data import to_sequences


def _plain(value):
    """``value`` as a Python scalar where it is a numpy one, for messages: ``1``, not ``np.int64(1)``."""
    return value.item() if isinstance(value, np.generic) else value


# time_channel may be a string: the command line passes its --time-channel on as given.
@validate_params(
    {"path": [str, os.PathLike], "time_channel": [Integral, str, None]},
    prefer_skip_nested_validation=True,
)
def load_npz(path, time_channel=None):
    """Load ``X``, ``y`` (and optionally ``time_channel``) from a ``.npz`` file.

    Parameters
    ----------
    path : str or path-like
        File with arrays ``X`` (n_samples, n_channels, n_timesteps), ``y``
        (n_samples,), optionally a scalar ``time_channel`` (a negative value
        means none) and ``channel_names``.
    time_channel : int, "none" or None, default=None
        Overrides the file's ``time_channel``; ``"none"`` forces no time channel.

    Returns
    -------
    X : ndarray
    y : ndarray
    time_channel : int or None
    channel_names : list of str or None

    Raises
    ------
    ValueError
        If ``X`` or ``y`` is missing.
    """
    with np.load(path, allow_pickle=False) as data:
        missing = [k for k in ("X", "y") if k not in data.files]
        if missing:
            raise ValueError(f"{path}: the .npz file has no array(s) {missing}; it holds {data.files}.")
        X = np.asarray(data["X"], dtype=np.float64)
        y = np.asarray(data["y"])
        file_tc = data["time_channel"] if "time_channel" in data.files else None
        names = [str(n) for n in data["channel_names"]] if "channel_names" in data.files else None
    if isinstance(time_channel, str):
        time_channel = None if time_channel.lower() == "none" else int(time_channel)
    elif time_channel is None and file_tc is not None:
        if np.ndim(file_tc) != 0:
            raise ValueError(f"{path}: time_channel must be a scalar, got shape {np.shape(file_tc)}.")
        value = int(file_tc)
        time_channel = value if value >= 0 else None
    return X, y, time_channel, names


@validate_params(
    {
        "path_or_df": [str, os.PathLike, pd.DataFrame],
        "id_col": [Hashable],
        "time_col": [Hashable],
        "label_col": [Hashable],
        "value_cols": [str, "array-like", None],
    },
    prefer_skip_nested_validation=True,
)
def load_long_csv(path_or_df, id_col, time_col, label_col, value_cols=None):
    """Read a long-format table (one row per observation) into ``X``, ``y``.

    Parameters
    ----------
    path_or_df : str, path-like or pandas.DataFrame
        CSV file or DataFrame with one row per observation time of one
        sequence.
    id_col, time_col, label_col : str
        Columns with the sequence id, the time stamp (numbers, or datetimes
        converted to hours since each sequence's first row) and the label.
    value_cols : str, sequence of str or None, default=None
        Measured columns (a str: names separated by commas); None takes every
        other column.

    Returns
    -------
    X : ndarray of shape (n_ids, 1 + n_values, n_timesteps)
        Channel 0 holds the time stamps (use ``time_channel=0``).
    y : ndarray of shape (n_ids,)
        Each id's label.
    ids : ndarray of shape (n_ids,)
        The ids, in the order of ``X``.
    channel_names : list of str
        ``[time_col] + value_cols``.

    Raises
    ------
    ValueError
        A column is missing, an id's rows carry different labels, or an id
        has no label.
    """
    if isinstance(path_or_df, pd.DataFrame):
        df = path_or_df.copy()
    else:
        df = pd.read_csv(path_or_df)
    for col in (id_col, time_col, label_col):
        if col not in df.columns:
            raise ValueError(f"Column {col!r} not found; the table has columns {list(df.columns)}.")
    if isinstance(value_cols, str):
        value_cols = [c.strip() for c in value_cols.split(",") if c.strip()]
    if value_cols is None:
        value_cols = [c for c in df.columns if c not in (id_col, time_col, label_col)]
    t = df[time_col]
    if not pd.api.types.is_numeric_dtype(t) and not pd.api.types.is_datetime64_any_dtype(t):
        try:
            df[time_col] = pd.to_datetime(t)
        except (ValueError, TypeError) as exc:
            raise ValueError(f"Column {time_col!r} holds neither numbers nor datetimes: {exc}") from exc

    labels = df[[id_col, label_col]].dropna(subset=[label_col])
    n_labels = labels.groupby(id_col)[label_col].nunique()
    bad = n_labels[n_labels > 1]
    if len(bad):
        shown = ", ".join(repr(_plain(i)) for i in bad.index[:5]) + (" ..." if len(bad) > 5 else "")
        raise ValueError(
            f"The label column {label_col!r} disagrees within {len(bad)} id(s) ({shown}); every row of "
            "an id must carry the same label (or none)."
        )
    per_id = labels.groupby(id_col)[label_col].first()
    X, ids, value_cols = to_sequences(df.drop(columns=[label_col]), id_col, time_col, value_cols)
    unlabeled = [i for i in ids if i not in per_id.index]
    if unlabeled:
        shown = [_plain(i) for i in unlabeled[:5]]
        raise ValueError(f"{len(unlabeled)} id(s) have no label in {label_col!r}: {shown!r}.")
    y = per_id.loc[ids].to_numpy()
    if y.dtype.kind == "f" and np.all(np.mod(y, 1) == 0):
        y = y.astype(np.int64)
    return X, y, ids, [str(time_col)] + [str(c) for c in value_cols]


def _builtin_names(info, n_channels):
    """Channel names of the built-in dataset, with each channel's role."""
    roles = {c: [] for c in range(n_channels)}
    for role in ("slow", "fast", "noise"):
        for c in info[f"{role}_channels"]:
            roles[c].append(role)
    names = [f"ch{c} ({'+'.join(roles[c])})" if roles[c] else f"ch{c}" for c in range(n_channels)]
    names[info["time_channel"]] = "time"
    return names


def _feature_names(channel_names, n_channels, time_channel):
    if n_channels is None:
        return None
    keep = [c for c in range(n_channels) if time_channel is None or c != time_channel % n_channels]
    if channel_names is None:
        return [f"ch{c}" for c in keep]
    names = [str(n) for n in channel_names]
    if len(names) == n_channels:
        return [names[c] for c in keep]
    if len(names) == len(keep):
        return names
    raise ValueError(
        f"channel_names has {len(names)} names but X has {n_channels} channels"
        + (f" ({len(keep)} without the time channel)." if time_channel is not None else ".")
    )


def _n_channels(X):
    if isinstance(X, np.ndarray):
        return X.shape[1] if X.ndim == 3 else 1
    first = np.asarray(X[0])
    return first.shape[0] if first.ndim == 2 else 1
