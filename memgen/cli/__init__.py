"""The ``memgen`` command: a thin shell over the library (parse, call, print).

Every problem the user can fix ends as one line on stderr (``memgen: error: ...``) and exit
code 2 (usage) or 1 (data); never a traceback.
"""

from __future__ import annotations

import sys

import click

from memgen import __version__
from memgen.cli import audit, ecosystem, generate, models, score, train
from memgen.cli.bridge import bridge_group
from memgen.cli.common import _fail, outside_error
from memgen.cli.discover import info_command, list_command
from memgen.cli.select import select_command
from memgen.format.errors import MemgenError


class _Group(click.Group):
    """Turns every expected failure into one line and an exit code."""

    def main(self, *args, **kwargs):  # noqa: D102
        kwargs["standalone_mode"] = False
        try:
            rv = super().main(*args, **kwargs)
        except MemgenError as e:
            _fail(e.message, e.exit_code)
        except click.exceptions.Exit as e:
            sys.exit(e.exit_code)
        except click.exceptions.Abort:
            _fail("aborted", 130)
        except click.ClickException as e:
            _fail(e.format_message().replace("\n", " "), e.exit_code)
        except KeyboardInterrupt:
            _fail("interrupted; re-run the same command to resume", 130)
        except BrokenPipeError:
            sys.exit(0)
        except (OSError, ModuleNotFoundError) as e:  # a full disk, a missing extra: memgen.cli.common says what
            _fail(*outside_error(e))
        sys.exit(rv if isinstance(rv, int) else 0)


@click.group(cls=_Group, context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100})
@click.version_option(__version__, prog_name="memgen")
def main() -> None:
    """memgen: episodes that test how long-context models manage memory.

    \b
    Typical session:
      memgen generate --family overwrite --length 4096 --episodes 100 --out ds
      memgen verify ds
      memgen show ds --config overwrite-token-4096 --index 0
    """


# Every command, in the order of the data path; each module imports its library only when run.
for _command in (generate.generate, generate.verify, generate.show, models.eval_command, models.stress_command,
                 score.score, ecosystem.publish_command, ecosystem.export_command, ecosystem.run_command,
                 train.train_command, audit.audit, select_command, list_command, info_command, bridge_group):
    main.add_command(_command)
