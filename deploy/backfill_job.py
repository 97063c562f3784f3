"""The backfill as a Spark job: the script of the AWS Glue job in deploy/template.yaml, and for spark-submit.

AWS Glue passes a job's arguments on the command line (``--export s3://...``), among its own (``--JOB_ID``,
``--JOB_RUN_ID``, ``--TempDir`` ...), and has no environment variables to set: so the ``PIPELINE_*``
configuration comes as arguments too (``--PIPELINE_COLUMNS event=@eventName,id``), and unknown arguments are
ignored. The job fails (exit status 1) if a data file or an item failed, 2 if the export or the configuration
cannot be used; either way the reason is in the driver's log.

    spark-submit --py-files dist/pipeline.zip deploy/backfill_job.py \
        --export s3://exports/AWSDynamoDB/01234567890123-a1b2c3d4/ --to s3://lake/ \
        --PIPELINE_COLUMNS event=@eventName,id,amount,@version

With ``spark-submit``, ``PIPELINE_*`` variables already in the environment are used as well.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence

from pipeline.cli import main
from pipeline.config import VARIABLES


def job_arguments(argv: Sequence[str]) -> tuple[list[str], dict[str, str]]:
    """The ``backfill`` command line and the ``PIPELINE_*`` variables from a Glue job's (or spark-submit's) argv."""
    parser = argparse.ArgumentParser(prog="backfill_job.py", allow_abbrev=False)
    parser.add_argument("--export", required=True)
    parser.add_argument("--to", required=True)
    parser.add_argument("--prefix")
    parser.add_argument("--error-prefix")
    parser.add_argument("--keys")
    parser.add_argument("--name")
    parser.add_argument("--gzip", choices=("true", "false"), default="false")
    for variable in VARIABLES:
        parser.add_argument(f"--{variable}")
    args, _glue_own = parser.parse_known_args(argv)
    command = ["backfill", args.export, "--to", args.to, "--engine", "spark", "--quiet"]
    for flag in ("prefix", "error_prefix", "keys", "name"):
        if getattr(args, flag) is not None:
            command += [f"--{flag.replace('_', '-')}", getattr(args, flag)]
    if args.gzip == "true":
        command.append("--gzip")
    env = {name: getattr(args, name) for name in VARIABLES if getattr(args, name) is not None}
    return command, env


if __name__ == "__main__":
    command, env = job_arguments(sys.argv[1:])
    os.environ.update(env)
    sys.exit(main(command))
