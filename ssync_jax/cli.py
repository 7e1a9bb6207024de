"""What every command line of the project shares: the libraries kept quiet (one flag to hear them),
a user's mistake (`ssync_jax.errors.UserError`) printed as one line, exit status 1, no traceback,
and Ctrl-C as one line, exit status 130.

    from ssync_jax import cli  # First, before TensorFlow loads (its C++ log level is read at import).
    ...
    if __name__ == "__main__":
        cli.run(main)
"""

import os
import sys

# TensorFlow's C++ INFO lines ("oneDNN custom operations are on") go straight to stderr; only this
# variable, read when TensorFlow loads, stops them.
if "--log_libraries" not in sys.argv:
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "1")

from absl import app, flags  # noqa: E402

from ssync_jax import errors, logs, paths  # noqa: E402

flags.DEFINE_bool("log_libraries", False, "Show the libraries' INFO and WARNING log lines (orbax, JAX, TFDS, ...).")


class _PathParser(flags.ArgumentParser):
    """A path flag's value with `~` and `$VARIABLES` expanded (`--out=~/x` is not expanded by the shell)."""

    syntactic_help = "a path (~ and $VARIABLES are expanded)"

    def parse(self, argument: str | None) -> str | None:
        return None if argument is None else paths.expand(str(argument))

    def flag_type(self) -> str:
        return "path"


def DEFINE_path(name: str, default: str | None, help: str, **kwargs):  # noqa: N802 (absl's naming)
    """A string flag holding a path, expanded as a shell would even after `=`."""
    return flags.DEFINE(_PathParser(), name, default, help, serializer=flags.ArgumentSerializer(), **kwargs)


def report(error: errors.UserError) -> None:
    """Prints a user's mistake as one line on stderr and exits with status 1."""
    print("Error: " + " ".join(str(error).split()), file=sys.stderr)
    sys.exit(1)


def run(main, flags_parser=None) -> None:
    """`absl.app.run(main)` with the libraries quiet (unless --log_libraries) and user errors as one line."""

    def quiet_main(argv: list[str]) -> None:
        logs.quiet_libraries(show=flags.FLAGS.log_libraries)
        try:
            main(argv)
        except errors.UserError as error:
            report(error)
        except KeyboardInterrupt:
            # Ctrl-C: training saves first (`ssync_jax.train`); elsewhere nothing is left half-written.
            print("Interrupted (Ctrl-C).", file=sys.stderr)
            sys.exit(130)

    if flags_parser is None:
        app.run(quiet_main)
    else:
        app.run(quiet_main, flags_parser=flags_parser)
