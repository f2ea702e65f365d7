"""Which Kubernetes node a step's pod asks for when the code location runs on Kubernetes (deploy/, docs/deploy.md).

Dagster's `dagster-k8s/config` op tag: the k8s_job_executor reads it when each step is a pod; the local executors
ignore it. Requests are the scale targets of issue 14 (features <= 4 GiB, training <= 8 GiB).
"""

K8S_CONFIG_TAG = "dagster-k8s/config"
GPU = "nvidia.com/gpu"  # the resource NVIDIA's device plugin offers, and the taint GPU node pools carry
# set to "true" by NVIDIA's GPU feature discovery on GPU nodes; only "absent" is asked for, so a cluster
# without the label still schedules every step
GPU_NODE_LABEL = "nvidia.com/gpu.present"

ON_GPU_NODE = {
    K8S_CONFIG_TAG: {
        # asking for the GPU is what puts the pod on a GPU node; the toleration lets it past their taint
        "container_config": {"resources": {"requests": {"cpu": "4", "memory": "8Gi"}, "limits": {GPU: 1}}},
        "pod_spec_config": {"tolerations": [{"key": GPU, "operator": "Exists", "effect": "NoSchedule"}]},
    }
}

ON_CPU_NODE = {
    K8S_CONFIG_TAG: {
        "container_config": {"resources": {"requests": {"cpu": "2", "memory": "4Gi"}}},
        "pod_spec_config": {
            "affinity": {
                "node_affinity": {
                    "required_during_scheduling_ignored_during_execution": {
                        "node_selector_terms": [
                            {"match_expressions": [{"key": GPU_NODE_LABEL, "operator": "DoesNotExist"}]}
                        ]
                    }
                }
            }
        },
    }
}
