"""An optimizer that, like Distributed Shampoo's DDP distributor, insists on a process group."""

import torch
import torch.distributed as dist


class DistributedSGD(torch.optim.SGD):
    """SGD whose gradients are averaged over the process group before each step."""

    def __init__(self, params, lr):
        if not dist.is_initialized():
            raise RuntimeError("DistributedSGD needs torch.distributed to be initialized!")
        super().__init__(params, lr=lr)
        self.world_size = dist.get_world_size()

    @torch.no_grad()
    def step(self, closure=None):
        for group in self.param_groups:
            for param in group["params"]:
                if param.grad is not None:
                    dist.all_reduce(param.grad)
                    param.grad /= self.world_size
        return super().step(closure)
