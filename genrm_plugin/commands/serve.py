"""``genrm serve``: run the reward server (OpenRLHF ``/get_reward``, ``/v1/compare``, ``/health``).

Flags (or ``--config genrm.yaml``) fill every section of :class:`genrm_plugin.settings.Settings`
(the judge stack or the critique reward model -- ``reward_kind`` -- the server, micro-batching,
OpenRLHF's and veRL's sections). The same YAML file, named by ``$GENRM_CONFIG``, configures the
OpenRLHF reward file and the veRL ``compute_score``.
"""

from __future__ import annotations

import os

HELP = "serve a reward (GenRM judge or critique RM) as a reward server (OpenRLHF /get_reward, /v1/compare, /health)"


def main(argv: list[str]) -> int:
    from genrm_plugin.server import create_app, run_server
    from genrm_plugin.settings import Settings

    settings = Settings.parse(argv, "genrm serve")  # the veRL section is accepted (shared YAML) and unused
    token = os.environ.get(settings.serve.token_env) or None
    reward = settings.build_reward()
    serve, batch = settings.serve, settings.batch
    app = create_app(reward, serve, settings.openrlhf, batch, token=token)
    described = " ".join(f"{key}={value}" for key, value in reward.describe().items())
    print(
        f"genrm serve: {described} on http://{serve.host}:{serve.port} (max_batch={batch.max_batch}, "
        f"max_wait_ms={batch.max_wait_ms}, auth={'bearer' if token else 'off'})",
        flush=True,
    )
    run_server(app, serve, token_set=token is not None)
    return 0
