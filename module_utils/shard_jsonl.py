# Copyright shard-jobs contributors
# SPDX-License-Identifier: Apache-2.0
"""Files of JSON lines (phases.jsonl, the rolling sampler's samples.jsonl): the one reader.

Standard library only and importing no other module_utils file: the rolling
upgrade's sampler runs on a node as a plain script, with this file copied
beside it (roles/shard_upgrade).
"""

import json


def read_jsonl(path):
    """The JSON objects of a file, one a line, in file order; [] when there is no file.

    A line that is not a JSON object is skipped: a writer may be halfway
    through the last one, or a crash may have cut it.
    """
    records = []
    try:
        with open(path) as f:
            for line in f:
                try:
                    record = json.loads(line)
                except ValueError:
                    continue
                if isinstance(record, dict):
                    records.append(record)
    except OSError:
        pass
    return records
