import subprocess
import sys

import workbench as wb


def test_info_prints_summary_and_coverage(ani_path, capsys):
    from workbench.cli import main

    assert main(["info", str(ani_path)]) == 0
    out = capsys.readouterr().out
    assert "8 configurations" in out and "ccsd(t)/cbs" in out


def test_convert_writes_a_loadable_file(ani_path, tmp_path):
    out = tmp_path / "ani.h5"
    proc = subprocess.run(
        [sys.executable, "-m", "workbench.cli", "convert", str(ani_path), "-o", str(out)],
        capture_output=True,
        text=True,
        check=True,
    )
    assert "8 configurations" in proc.stdout
    assert len(wb.load(out)) == 8


def test_bad_file_gives_an_error_message_not_a_traceback(tmp_path):
    bad = tmp_path / "broken.h5"
    bad.write_text("this is not HDF5\n")
    proc = subprocess.run([sys.executable, "-m", "workbench.cli", "info", str(bad)], capture_output=True, text=True)
    assert proc.returncode == 2
    assert "broken.h5" in proc.stderr and "HDF5" in proc.stderr and "Traceback" not in proc.stderr
