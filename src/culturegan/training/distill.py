"""Recipe ``distill``: train a small, fast generator to imitate a big one.

A model trained on a GPU (or an imported official CycleGAN zoo model) is slow on a laptop CPU;
the student (e.g. ``mobile_resnet_6blocks``) learns to reproduce the teacher's outputs on the
source domain's photos, so GPU-trained quality becomes CPU-fast. Only photos are needed: the
teacher labels them. The loss is L1 between student and teacher outputs at full, 1/2 and 1/4
resolution (the coarse terms weigh colour and layout, the full one detail). Adam with a
constant-then-linear-decay learning rate and an EMA of the student, as in the other recipes.

Usage::

    culturegan distill --teacher models/ukiyoe --data.root photos_root --data.domains photo \\
        --model.generator mobile_resnet_6blocks --model.ngf 32
"""

from __future__ import annotations

import math
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from culturegan.checkpoint import pretrained_config
from culturegan.config import RunConfig
from culturegan.models import build_generator
from culturegan.training.base import Recipe, linear_decay_schedule
from culturegan.training.cyclegan import init_normal_
from culturegan.training.ema import EMA
from culturegan.training.logger import make_grid


def multiscale_l1(student: torch.Tensor, teacher: torch.Tensor, scales: int = 3) -> torch.Tensor:
    """Mean of the L1 distances at full, 1/2, 1/4 ... resolution (average pooling)."""
    total = student.new_zeros(())
    for i in range(scales):
        if i:
            student, teacher = F.avg_pool2d(student, 2), F.avg_pool2d(teacher, 2)
        total = total + (student - teacher).abs().mean()
    return total / scales


class DistillRecipe(Recipe):
    name = "distill"
    n_domains = 1  # only the teacher's source domain (its photos) is needed

    def __init__(self, cfg: RunConfig, *, device: torch.device, domains: tuple[str, ...]) -> None:
        from culturegan.inference import TwoDomainStylizer

        if not cfg.model.teacher:
            raise ValueError("the distill recipe needs a teacher model: --model.teacher DIR")
        self.cfg, self.device, self.domains = cfg, device, tuple(domains)
        # Only a two-domain folder opens as TwoDomainStylizer; any other kind is refused
        # with a message naming it.
        teacher = TwoDomainStylizer.from_pretrained(cfg.model.teacher, device=str(device))
        direction = teacher.resolve_direction(*_split(cfg.model.teacher_direction))
        if self.domains and direction.split("->")[0] != self.domains[0]:
            raise ValueError(
                f"the teacher translates {direction}, but the photos are domain "
                f"'{self.domains[0]}'; name the teacher's source folder with --data.domains, or "
                "pick the teacher's direction with --model.teacher_direction"
            )
        self.direction = direction
        self.teacher = teacher.networks[teacher.directions[direction]].requires_grad_(False)
        self.teacher_domains = teacher.domains
        self.student = build_generator(cfg.model.generator, ngf=cfg.model.ngf).to(device)
        init_normal_(self.student)
        self.ema = EMA(self.student, cfg.train.ema_decay)
        o = cfg.optim
        self.opt_g = torch.optim.Adam(self.student.parameters(), lr=o.lr, betas=(o.beta1, o.beta2))
        factor = linear_decay_schedule(cfg.train.steps, o.decay_steps)
        self.sched_g = torch.optim.lr_scheduler.LambdaLR(self.opt_g, factor)

    def networks(self) -> dict[str, nn.Module]:
        return {"student": self.student}

    def train_step(self, batch: dict[str, torch.Tensor], step: int) -> dict[str, float]:
        x = batch["a"].to(self.device, non_blocking=True)  # (B, 3, S, S) source photos
        with torch.no_grad():
            target = self.teacher(x)
        loss = multiscale_l1(self.student(x), target)
        self.opt_g.zero_grad(set_to_none=True)
        loss.backward()
        self.sync_grads(self.opt_g)
        self.opt_g.step()
        self.sched_g.step()
        self.ema.update(self.student, step)
        return self.check_finite({"loss/distill": loss.item()}, step, "lower optim.lr")

    def learning_rates(self) -> dict[str, float]:
        return {"lr/g": self.opt_g.param_groups[0]["lr"]}

    @torch.no_grad()
    def sample_grid(self, samples: dict[str, torch.Tensor]) -> torch.Tensor:
        """Rows: photos, teacher outputs, student (EMA) outputs."""
        x = samples[self.domains[0]].to(self.device)
        rows = [x, self.teacher(x), self.ema.module(x)]
        return make_grid(torch.cat(rows).cpu(), rows=len(rows))

    @torch.no_grad()
    def gap(self, images: torch.Tensor) -> dict[str, float]:
        """Student (EMA) vs. teacher on ``images``: mean absolute difference (0-255) and PSNR."""
        x = images.to(self.device)
        diff = (self.ema.module(x) - self.teacher(x)) * 127.5  # pixel units
        mse = float(diff.pow(2).mean())
        return {
            "mean_abs_diff_0_255": float(diff.abs().mean()),
            "psnr_db": 10 * math.log10(255.0**2 / max(mse, 1e-12)),
            "images": len(x),
        }

    def export_modules(self) -> dict[str, nn.Module]:
        return {"g_ab": self.ema.module}

    def export_config(self) -> dict[str, Any]:
        source, target = self.direction.split("->")
        return pretrained_config(
            kind="two_domain",
            recipe=self.name,
            domains=[source, target],
            networks={"g_ab": self.student},
            directions={self.direction: "g_ab"},
            size_multiple=self.student.size_multiple,
            train_crop_size=self.cfg.data.crop_size,
            distilled_from=str(self.cfg.model.teacher),
        )

    def state_dict(self) -> dict[str, Any]:
        return {
            "student": self.student.state_dict(),
            "ema": self.ema.state_dict(),
            "opt_g": self.opt_g.state_dict(),
            "sched_g": self.sched_g.state_dict(),
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.student.load_state_dict(state["student"])
        self.ema.load_state_dict(state["ema"])
        self.opt_g.load_state_dict(state["opt_g"])
        self.sched_g.load_state_dict(state["sched_g"])


def _split(direction: str) -> tuple[str | None, str | None]:
    if not direction:
        return None, None
    source, sep, target = direction.partition("->")
    if not sep:
        raise ValueError(f"model.teacher_direction takes SOURCE->TARGET, got '{direction}'")
    return source or None, target or None
