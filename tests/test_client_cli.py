"""`python -m models.client`: a ticker, the snapshot or a CSV of prices, any endpoint -> one readable answer or one line."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from models import client_cli
from models.data import load_prices
from tests.support import ROOT, free_port

SENTENCE = r"AAPL: close on 2012-07-02 \(target day, as of 2012-06-29\) forecast [\d,.]+, (up|down) from [\d,.]+, \d+% sure"


def run(*args: str) -> tuple[int, str, str]:
    """The command as a user types it: a real process, so a traceback or a stray warning would show."""
    p = subprocess.run(
        [sys.executable, "-m", "models.client", *args], cwd=ROOT, capture_output=True, text=True, timeout=120, check=False
    )
    return p.returncode, p.stdout, p.stderr


@pytest.mark.integration
def test_it_forecasts_a_ticker_against_the_url_and_key_given(local_api):
    code, out, err = run("AAPL", "--url", local_api.url, "--key", local_api.key, "--as-of", "2012-06-29", "--show-request")
    assert code == 0 and err == "", err
    lines = out.splitlines()
    assert lines[0] == f"POST {local_api.url}/predict  (header X-API-Key: <your key>)"
    body = json.loads(lines[1])
    assert body["ticker"] == "AAPL" and len(body["features"]) == 600
    assert local_api.key not in out, "the key is never printed"
    import re

    assert re.fullmatch(SENTENCE + r" of the direction; 80% range [\d,.]+ to [\d,.]+", lines[2]), lines[2]


@pytest.mark.integration
def test_a_csv_of_prices_is_its_own_calendar(local_api, tmp_path):
    prices = load_prices("IBM", source="snapshot").loc["2011-01-01":"2012-06-29"]
    path = tmp_path / "mine.csv"
    prices.rename_axis("Date").to_csv(path)
    code, out, err = run("MYCO", "--csv", str(path), "--url", local_api.url, "--key", local_api.key, "--json")
    assert code == 0, err
    answer = json.loads(out)
    assert answer["ticker"] == "MYCO" and answer["interval"]["low"] <= answer["prediction"] <= answer["interval"]["high"]


@pytest.mark.integration
def test_the_local_apis_file_gives_the_default_url_and_key(local_api):
    url, key = client_cli.local_defaults(local_api.dir)
    assert (url, key) == (local_api.url, local_api.key)
    assert client_cli.local_defaults(local_api.dir / "nowhere") == (client_cli.DEFAULT_URL, "")


@pytest.mark.integration
@pytest.mark.parametrize(
    "args, says",
    [
        (["ZZZZQ"], "ticker 'ZZZZQ' is not in the bundled snapshot"),
        (["AAPL", "--key", "wrong-key-000"], "refused the API key: pass the key"),
        (["AAPL", "--url", "DOWN"], "nothing answers at http://127.0.0.1:"),
        (["AAPL", "--as-of", "1990-01-01"], "no prices for AAPL on or before 1990-01-01"),
        (["AAPL", "--as-of", "soon"], "--as-of 'soon' is not a date"),
        (["AAPL", "--csv", "missing.csv"], "cannot read missing.csv"),
    ],
)
def test_each_failure_is_one_clear_line(local_api, args, says):
    args = [a.replace("DOWN", f"http://127.0.0.1:{free_port()}/prod") for a in args]
    code, out, err = run(args[0], "--url", local_api.url, "--key", local_api.key, *args[1:])  # the last --url/--key wins
    assert code == 2 and out == ""
    assert err.count("\n") == 1 and err.startswith("forecast: ") and says in err, err


def test_a_csv_without_the_price_columns_says_which(tmp_path):
    path = tmp_path / "p.csv"
    path.write_text("Date,Close\n2012-01-03,1.0\n")
    with pytest.raises(client_cli.UsageError, match="lacks the column\\(s\\) Open, High, Low, Volume"):
        client_cli.read_csv(path)


@pytest.mark.integration
def test_the_readmes_python_example_runs_as_written(local_api, capsys):
    """The README's ten lines, against the local API's own state file: they print an answer with its interval."""
    import re

    block = re.search(r"   ```python\n(.*?)   ```", (ROOT / "README.md").read_text(), re.S)[1]
    code = "\n".join(line[3:] for line in block.splitlines())
    assert len([line for line in code.splitlines() if line.strip()]) <= 10
    exec(code.replace(".local/local_api.json", str(local_api.dir / "local_api.json")), {})
    assert "'interval': {'low'" in capsys.readouterr().out
