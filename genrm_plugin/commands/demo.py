"""``genrm demo``: train and evaluate tiny judges in the embedded verifiable world; write a report.

``genrm demo`` runs the full demo (~10 minutes on 2 CPU cores with a cold base-model cache);
``genrm demo --quick`` the reduced one (~2 minutes). Flags fill
:class:`~genrm_plugin.demo.config.DemoConfig` (``--config FILE.yaml`` too).
"""

from __future__ import annotations

HELP = "run the embedded demo: train tiny judges in a verifiable world, use them as rewards, write a report"


def main(argv: list[str]) -> int:
    from genrm_plugin.config_parser import parse_configs
    from genrm_plugin.demo.config import DemoConfig
    from genrm_plugin.demo.run import run_demo

    (config,) = parse_configs((DemoConfig,), argv, "genrm demo")
    _, summary = run_demo(config)
    print(summary)
    return 0
