"""``python -m disaggctl``: the command line, one sub-package per tool.

``synth/`` (offline synth and its PR diff), ``plan/`` (size deployments for their SLO), ``verify/``
(post-deploy checks, fabric check); ``testing/`` holds the recording Pulumi mocks the synth and the
tests (this project's and consumers') build on.
"""
