"""The shape of one LeaderWorkerSet group (pods x GPUs) and what follows from it."""

from __future__ import annotations

from dataclasses import dataclass

from components.config.scheduling import NodePool


@dataclass(frozen=True)
class GroupLayout:
    """Shape of one LeaderWorkerSet group: ``pods_per_group`` pods of ``gpus_per_pod`` GPUs.

    Process layout (all MPI ranks are placed by the leader's mpirun, node by node):

    * one node (``spawn``): upstream's orchestrator mode. The leader runs ``mpirun -n 1
      tritonserver`` with ``TRTLLM_ORCHESTRATOR=1``; the TRT-LLM backend MPI-spawns
      ``world_size`` executor workers (``executor_worker_path``) into the hostfile's free slots.
      Upstream documents this spawning as single-node only.
    * several nodes: the same orchestrator with ``TRTLLM_ORCHESTRATOR_SPAWN_PROCESSES=0``: one
      mpirun starts every rank at once over the hostfile, rank 0 the orchestrator tritonserver,
      ranks 1..world_size tritonservers that only load ``tensorrt_llm`` and serve as its executor
      (the model's ``participant_ids``). The leader hosts rank 0 and the first node's ranks; each
      worker pod runs sshd, through which mpirun starts orted and the ranks there.
    """

    pods_per_group: int
    gpus_per_pod: int

    @property
    def world_size(self) -> int:
        return self.pods_per_group * self.gpus_per_pod

    @property
    def multi_node(self) -> bool:
        return self.pods_per_group > 1

    @property
    def spawn(self) -> bool:
        """The orchestrator spawns the executor ranks itself (single-node groups)."""
        return not self.multi_node

    def participant_ids(self) -> str | None:
        """``participant_ids`` of the orchestrator's tensorrt_llm (None: spawned ranks)."""
        if self.spawn:
            return None
        return ",".join(str(rank) for rank in range(1, self.world_size + 1))

    def leader_slots(self) -> int:
        """MPI slots on the leader: the orchestrator plus one rank per GPU."""
        return self.gpus_per_pod + 1


def group_layout(pods_per_group: int, gpus_per_pod: int | None, pool: NodePool) -> GroupLayout:
    """Layout of a worker group; ``gpus_per_pod`` None means every GPU of the pool's node."""
    return GroupLayout(pods_per_group, gpus_per_pod if gpus_per_pod is not None else pool.gpus_per_node)
