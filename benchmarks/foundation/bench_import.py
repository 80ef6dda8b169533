"""How long `import rszoo` takes (cold interpreter), next to the libraries it must not pull in at import time.

Each import runs in a fresh interpreter, 7 times; the median is reported. Target: `import rszoo` (and listing the zoo)
costs a small fraction of `import torch`, because torch, transformers, Lightning and MLflow load lazily.
"""

from __future__ import annotations

import statistics
import subprocess
import sys
import time

sys.path.insert(0, __file__.rsplit("/", 2)[0])
from _common import save_result

STATEMENTS = {
    "import rszoo": "import rszoo",
    "import rszoo; list_models()": "import rszoo; rszoo.list_models()",
    "import torch": "import torch",
    "import transformers": "import transformers",
    "import lightning": "import lightning",
    "import mlflow": "import mlflow",
}


def cold_import(statement: str, repeat: int = 7) -> float:
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        subprocess.run([sys.executable, "-c", statement], check=True)
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def main() -> None:
    baseline = cold_import("pass")
    results = {name: cold_import(stmt) - baseline for name, stmt in STATEMENTS.items()}
    ratios = {name: results[name] / results["import torch"] for name in results}
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 3.2))
    names = list(results)
    ax.barh(
        names, [results[n] for n in names], color=["tab:green" if "rszoo" in n else "tab:gray" for n in names]
    )
    ax.set_xlabel("seconds (median of 7 cold interpreters, interpreter start-up subtracted)")
    ax.set_title("import time: rszoo stays light")
    ax.invert_yaxis()
    save_result(
        "import_time",
        {
            "interpreter_startup_s": baseline,
            "import_seconds": results,
            "ratio_to_import_torch": ratios,
            "target": "import rszoo well below import torch (lazy heavy imports)",
        },
        fig,
    )


if __name__ == "__main__":
    main()
