"""The shared frozen trunk: recorded while sampling, reused by every later pass, equal to full forward passes."""

from __future__ import annotations

import torch

from tests.tiny_model import tiny_agent
from textgym.agents.lm_policy import LMPolicy, SharedTrunk, causal_lm_forward
from textgym.agents.lm_ppo import LMPPO, LMPPOConfig
from textgym.agents.rloo import RLOO, RLOOConfig
from textgym.left_padding import positions
from textgym.models import load_causal_lm


def agent(tiny, cls=LMPPO, config=LMPPOConfig, **overrides):
    return tiny_agent(tiny, cls, config, **{"eval_episodes": 2, **overrides})


def full_pass(model, batch):
    ids, mask = batch.inputs
    out = model(input_ids=ids, attention_mask=mask, position_ids=positions(mask), output_hidden_states=True)
    return out.logits[:, -batch.length :], out.hidden_states[-1][:, -batch.length :]


def test_trunk_recorded_while_sampling_gives_the_full_forward_pass(tiny):
    lmppo = agent(tiny)
    assert lmppo.trunk.enabled
    batch = lmppo.rollout(lmppo.seeds(0))
    ids, _ = batch.inputs
    assert batch.trunk is not None and batch.trunk.shape[:2] == ids.shape
    logits, values = lmppo.forward(batch)
    full_logits, full_hidden = full_pass(lmppo.policy.lm, batch)
    valid = batch.valid.unsqueeze(-1)
    torch.testing.assert_close(logits * valid, full_logits * valid, atol=1e-4, rtol=1e-4)
    torch.testing.assert_close(values, lmppo.policy.value_head(full_hidden).squeeze(-1), atol=1e-5, rtol=1e-4)
    ref_logits, _ = full_pass(lmppo.reference, batch)
    expected = torch.log_softmax(ref_logits.float(), -1).gather(-1, batch.tokens.unsqueeze(-1)).squeeze(-1)
    torch.testing.assert_close(lmppo.ref_logprobs(batch), expected * batch.valid, atol=1e-4, rtol=1e-4)


def test_trunk_stays_right_after_updates_because_the_shared_layers_do_not_train(tiny):
    lmppo = agent(tiny)
    lmppo.step()
    batch = lmppo.rollout(lmppo.seeds(1))
    logits, _ = lmppo.forward(batch)
    full_logits, _ = full_pass(lmppo.policy.lm, batch)
    valid = batch.valid.unsqueeze(-1)
    torch.testing.assert_close(logits * valid, full_logits * valid, atol=1e-4, rtol=1e-4)


def test_no_trunk_when_nothing_is_frozen(tiny):
    lmppo = agent(tiny, freeze_layers=0)
    assert not lmppo.trunk.enabled
    batch = lmppo.rollout(lmppo.seeds(0))
    assert batch.trunk is None
    logits, _ = lmppo.forward(batch)
    full_logits, _ = full_pass(lmppo.policy.lm, batch)
    torch.testing.assert_close(logits, full_logits)


def test_a_model_whose_layers_do_not_compose_falls_back_to_full_passes(tiny, caplog):
    reference = load_causal_lm(tiny)
    policy = LMPolicy(reference, freeze_layers=1)

    class Tampered(SharedTrunk):
        def upper(self, model):  # a decoder whose upper pass differs from its full pass
            original = super().upper(model)

            class Context:
                def __enter__(self):
                    original.__enter__()
                    self.bias = model.lm_head.weight.data.clone()
                    model.lm_head.weight.data += 1.0

                def __exit__(self, *exc):
                    model.lm_head.weight.data.copy_(self.bias)
                    return original.__exit__(*exc)

            return Context()

    trunk = Tampered(policy.lm, reference, 1)
    assert not trunk.enabled and "full passes instead" in caplog.text
    ids = torch.tensor([[5, 6, 7, 8]])
    mask = torch.ones_like(ids)
    out = causal_lm_forward(policy.lm, ids, mask, 2, trunk=torch.zeros(1, 4, 32), shared=trunk)
    full = policy.lm(input_ids=ids, attention_mask=mask).logits[:, -2:]
    torch.testing.assert_close(out.logits, full)  # the trunk argument is ignored once switched off


def test_rloo_takes_one_policy_pass_per_update(tiny):
    rloo = agent(tiny, RLOO, RLOOConfig, samples_per_prompt=2)
    calls = []
    handle = rloo.policy.lm.register_forward_hook(lambda *args: calls.append(1))
    batch = rloo.rollout(rloo.seeds(0))
    calls.clear()
    rloo.update(batch)
    handle.remove()
    assert len(calls) == 2  # the update's own pass, and the post-update KL measurement
