# Extra CLIP references beyond ../../fixtures/golden (made with transformers 5.18.0, torch 2.13 CPU, fp32):
# the tiny-sd text encoder with an attention mask, a short sequence, hidden states, a gelu/legacy-pooling
# variant, and transformers' CLIPTokenizer padding/truncation over ../shared/clip-vocab (ids only).
# Run from the repository root: python3 tests/models/clip/make_clip_extra.py
import json, os, shutil, tempfile
import torch
from safetensors.torch import save_file
from transformers import CLIPTextModel, CLIPTextConfig, CLIPTokenizer

here = os.path.dirname(os.path.abspath(__file__))
te_dir = os.path.join(here, "..", "..", "fixtures", "golden", "tiny-sd", "text_encoder")
te = CLIPTextModel.from_pretrained(te_dir).eval()
G = {}
with torch.no_grad():
    # padding mask: 1 for bos..eos, 0 after, as the tokenizer's attention_mask
    ids = torch.tensor([[998, 5, 17, 256, 999] + [999] * 72, [998, 7, 999] + [999] * 74])
    mask = (torch.arange(77)[None, :] < torch.tensor([[5], [3]])).long()
    o = te(input_ids=ids, attention_mask=mask)
    G.update({"mask.input_ids": ids, "mask.attention_mask": mask, "mask.last_hidden_state": o.last_hidden_state,
              "mask.pooler_output": o.pooler_output})
    # a sequence shorter than max_position_embeddings, with hidden states
    ids = torch.tensor([[998, 3, 141, 592, 999], [998, 999, 999, 999, 999]])
    o = te(input_ids=ids, output_hidden_states=True)
    G.update({"short.input_ids": ids, "short.last_hidden_state": o.last_hidden_state, "short.pooler_output": o.pooler_output,
              "short.hidden_state_1": o.hidden_states[1], "short.hidden_state_2": o.hidden_states[2]})
    # gelu activation and eos_token_id 2: the legacy pooling rule (argmax of the ids)
    cfg = CLIPTextConfig.from_pretrained(te_dir)
    cfg.hidden_act = "gelu"; cfg.eos_token_id = 2
    te2 = CLIPTextModel(cfg).eval()
    te2.load_state_dict(te.state_dict())
    ids = torch.tensor([[998, 5, 2, 17, 999] + [999] * 72, [998, 2, 40, 2, 7] + [999] * 72])
    o = te2(input_ids=ids)
    G.update({"legacy.input_ids": ids, "legacy.last_hidden_state": o.last_hidden_state, "legacy.pooler_output": o.pooler_output})

# transformers' CLIPTokenizer as SD v1 calls it (padding max_length 77, truncation), over the real vocabulary
tmp = tempfile.mkdtemp()
for f in ("vocab.json", "merges.txt"):
    shutil.copy(os.path.join(here, "..", "..", "..", "..", "shared", "clip-vocab", f), tmp)
tok = CLIPTokenizer.from_pretrained(tmp, model_max_length=77, pad_token="<|endoftext|>")
texts = ["a photo of a cat", "a dog " * 400, "Don't stop, it's 3:45pm!!!"]
r = tok(texts, padding="max_length", max_length=77, truncation=True)
G["tok.input_ids"] = torch.tensor(r["input_ids"])
G["tok.attention_mask"] = torch.tensor(r["attention_mask"])
full = tok(texts)["input_ids"]
save_file({k: v.contiguous() for k, v in G.items()}, os.path.join(here, "clip-extra.safetensors"),
          metadata={"texts": json.dumps(texts), "untruncated_lengths": json.dumps([len(x) for x in full])})
print({k: list(v.shape) for k, v in G.items()}, [len(x) for x in full])
