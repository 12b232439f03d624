"""Cluster layer: AWS EKS (network, IAM, GPU node pools) or an existing IB/RoCE cluster, both
exposing the ClusterHandle contract (``contract.py``) that every other layer consumes."""
