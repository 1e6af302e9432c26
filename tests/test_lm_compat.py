"""textgym.lm_compat: the cache calls that differ between transformers versions, on a tiny Llama."""

from __future__ import annotations

import torch
from transformers import LlamaForCausalLM

from tests.tiny_model import tiny_llama_config
from textgym.lm_compat import logits_agree, output_cache, select_rows, with_cache
from textgym.models import load_tokenizer


def test_selected_rows_extend_like_their_source_rows_and_leave_the_source_as_it_was():
    tokenizer = load_tokenizer()
    torch.manual_seed(0)
    model = LlamaForCausalLM(tiny_llama_config(tokenizer, initializer_range=0.2)).eval()
    heads = torch.tensor([[5, 6, 7], [8, 9, 10]])
    with torch.inference_mode():
        cache = output_cache(model(input_ids=heads, use_cache=True))
        rows = torch.tensor([1, 0, 1])
        tail = torch.tensor([[11], [12], [13]])
        got = model(input_ids=tail, **with_cache(model, select_rows(cache, rows))).logits[:, -1]
        again = model(input_ids=tail, **with_cache(model, select_rows(cache, rows))).logits[:, -1]
        whole = model(input_ids=torch.cat([heads[rows], tail], dim=1)).logits[:, -1]
    assert cache.get_seq_length() == 3  # the forward passes extended the copies, not the source
    torch.testing.assert_close(got, whole, rtol=0, atol=1e-5)
    torch.testing.assert_close(again, got, rtol=0, atol=0)


def test_logits_agree_to_rounding_in_their_precision_and_not_beyond():
    full = torch.tensor([[2.0, -9.0, 0.5]])
    assert logits_agree(full, full + 5e-4)  # within 1e-4 x (max |full| + 1) = 1e-3
    assert not logits_agree(full, full + 2e-3)
    assert not logits_agree(full, full[:, :2])  # a different shape never agrees
    low = full.to(torch.bfloat16)
    assert logits_agree(low, low + 0.25)  # bfloat16 rounding: within 5e-2 x 10
    assert not logits_agree(low, low + 1.0)
