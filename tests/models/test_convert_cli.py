"""The converter's command line: --help and bad flags answer without a traceback."""
import pytest

from ddgan_jax.models import convert


def test_convert_cli_answers_help_and_bad_flags_without_a_traceback(capsys):
  convert.main(['convert', '--help'])
  out = capsys.readouterr().out
  assert 'usage: python -m ddgan_jax.models.convert' in out and '--part' in out
  with pytest.raises(SystemExit) as e:
    convert.main(['convert', '--checkpoint=netG_1200.pth'])  # --config, --output_dir missing
  err = capsys.readouterr().err
  assert e.value.code == 2 and err.startswith('error: ') and 'output_dir' in err
  assert len(err.strip().splitlines()) == 1
  with pytest.raises(SystemExit) as e:
    convert.main(['convert', '--no_such_flag=1'])
  assert e.value.code == 2 and 'no_such_flag' in capsys.readouterr().err
