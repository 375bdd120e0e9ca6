"""Run one index update in its own process (for the concurrency and interruption tests).

    python indexer_process.py ROOT MODEL [DIE_AFTER_TEXTS]

Embeds 4 texts per call. Prints the UpdateReport as JSON. With DIE_AFTER_TEXTS, the process kills itself (os._exit, no
cleanup, like SIGKILL) when the embedder is asked for more than that many texts in total.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

from dsv2cli.index import CorpusIndex, LlamaEmbedder
from dsv2cli.sources import load_inputs


def main() -> None:
    root, model = sys.argv[1], Path(sys.argv[2])
    die_after = int(sys.argv[3]) if len(sys.argv) > 3 else None
    embedder = LlamaEmbedder(model, max_tokens=128, threads=1)
    if die_after is not None:
        real_embed = embedder.embed

        def embed(texts):  # type: ignore[no-untyped-def]
            if embedder.calls + len(texts) > die_after:
                os._exit(9)
            return real_embed(texts)

        embedder.embed = embed  # type: ignore[method-assign]
    documents, _ = load_inputs([root])
    index = CorpusIndex(Path(os.environ["DSV2_HOME"]), [Path(root)], embed_batch=4)
    report = index.update(documents, embedder)
    print(json.dumps({"embedded": report.embedded, "added": len(report.added), "recovered": report.recovered}))


if __name__ == "__main__":
    main()
