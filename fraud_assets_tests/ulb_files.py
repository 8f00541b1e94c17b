"""Helpers that write tables laid out like the real ULB ``creditcard.csv``.

The real file (as distributed on Kaggle) quotes every header name and every ``Class`` value
and writes ``Time`` as a whole number::

    "Time","V1",...,"V28","Amount","Class"
    0,-1.3598071336738,...,149.62,"0"

Plain module (not a conftest) so test files can import it; it imports nothing from
``fraud_assets`` at import time except the schema's column names.
"""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np
import pandas as pd

from fraud_assets.core.data.schema import LABEL, LABELLED_COLUMNS, TIME

# The header and first two data rows of the real creditcard.csv, byte for byte.
REAL_HEADER = ",".join(f'"{name}"' for name in LABELLED_COLUMNS)
REAL_ROWS = (
    "0,-1.3598071336738,-0.0727811733098497,2.53634673796914,1.37815522427443,"
    "-0.338320769942518,0.462387777762292,0.239598554061257,0.0986979012610507,"
    "0.363786969611213,0.0907941719789316,-0.551599533260813,-0.617800855762348,"
    "-0.991389847235408,-0.311169353699879,1.46817697209427,-0.470400525259478,"
    "0.207971241929242,0.0257905801985591,0.403992960255733,0.251412098239705,"
    "-0.018306777944153,0.277837575558899,-0.110473910188767,0.0669280749146731,"
    "0.128539358066181,-0.189114843888824,0.133558376740387,-0.0210530534538215,"
    '149.62,"0"',
    "0,1.19185711131486,0.26615071205963,0.16648011335321,0.448154078460911,"
    "0.0600176492822243,-0.0823608088155687,-0.0788029833323113,0.0851016549148104,"
    "-0.255425128109186,-0.166974414004614,1.61272666105479,1.06523531137287,"
    "0.48909501589608,-0.143772296441519,0.635558093258208,0.463917041022171,"
    "-0.114804663102346,-0.183361270123994,-0.145783041325259,-0.0690831352230203,"
    "-0.225775248033138,-0.638671952771851,0.101288021253234,-0.339846475529127,"
    "0.167170404418143,0.125894532368176,-0.00898309914322813,0.0147241691924927,"
    '2.69,"0"',
)


def ulb_like(frame: pd.DataFrame) -> pd.DataFrame:
    """``frame`` with whole-second Time values (int-like floats), as in the real file."""
    out = frame.copy()
    out[TIME] = np.floor(out[TIME].to_numpy(dtype=np.float64))
    return out


def write_ulb_csv(frame: pd.DataFrame, path: Path) -> Path:
    """Write ``frame`` the way the real file is written: quoted header, quoted Class."""
    out = frame.copy()
    out[TIME] = out[TIME].to_numpy().astype(np.int64)
    if LABEL in out.columns:
        # Strings are quoted by QUOTE_NONNUMERIC; numbers are written bare (repr: exact).
        out[LABEL] = out[LABEL].astype(np.int64).astype(str)
    path.parent.mkdir(parents=True, exist_ok=True)
    out.to_csv(path, index=False, quoting=csv.QUOTE_NONNUMERIC, lineterminator="\n")
    return path


def replace_cell(path: Path, data_rows: list[int], column: str, text: str) -> None:
    """Overwrite ``column`` in the given 1-based data rows with raw CSV ``text``."""
    lines = path.read_text().split("\n")
    header = [name.strip('"') for name in lines[0].split(",")]
    position = header.index(column)
    for row in data_rows:
        fields = lines[row].split(",")
        fields[position] = text
        lines[row] = ",".join(fields)
    path.write_text("\n".join(lines))
