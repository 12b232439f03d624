"""Testing helpers for this project and for consumers' own stacks.

* :mod:`.mocks`: Pulumi SDK mocks that record every resource (type, name, parent, provider, inputs) with
  deterministic made-up ids: ``install_mocks(project, stack)``, then run a program or build components and
  read ``monitor.recorded``. The synth tool is built on them.
* :mod:`.local_triton`: a real Triton Inference Server on this machine (CPU), for tests and local runs.
"""
