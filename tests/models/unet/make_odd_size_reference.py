# Reference outputs of the tiny-sd UNet at latent sizes that the downsampling factor does not divide
# (diffusers' forward_upsample_size path), which golden.safetensors lacks. diffusers is not installed
# here, so this is a plain-PyTorch functional UNet over the same weights, written from diffusers'
# unet_2d_condition.py / unet_2d_blocks.py; it first reproduces the diffusers golden `unet.out`
# (8x8, asserted to 1e-5) and only then writes odd-size-reference.json beside this file.
#   python3 tests/models/unet/make_odd_size_reference.py      (torch 2.x, CPU, float32)
import json, math, os, struct
import torch
import torch.nn.functional as F

HERE = os.path.dirname(os.path.abspath(__file__))
GOLDEN = os.path.join(HERE, "..", "..", "fixtures", "golden")

def load_safetensors(path):
    with open(path, "rb") as f:
        data = f.read()
    n = struct.unpack("<Q", data[:8])[0]
    header = json.loads(data[8:8 + n])
    dt = {"F32": torch.float32, "I64": torch.int64}
    out = {}
    for k, v in header.items():
        if k == "__metadata__":
            continue
        b, e = v["data_offsets"]
        out[k] = torch.frombuffer(bytearray(data[8 + n + b:8 + n + e]), dtype=dt[v["dtype"]]).reshape(v["shape"])
    return out

cfg = json.load(open(os.path.join(GOLDEN, "tiny-sd", "unet", "config.json")))
W = load_safetensors(os.path.join(GOLDEN, "tiny-sd", "unet", "diffusion_pytorch_model.safetensors"))
G = load_safetensors(os.path.join(GOLDEN, "golden.safetensors"))
GROUPS, EPS, HEADS = cfg["norm_num_groups"], cfg["norm_eps"], cfg["attention_head_dim"]

def lin(p, x):
    return F.linear(x, W[p + ".weight"], W.get(p + ".bias"))

def conv(p, x, stride=1, padding=1):
    return F.conv2d(x, W[p + ".weight"], W[p + ".bias"], stride=stride, padding=padding)

def gn(p, x, eps=EPS):
    return F.group_norm(x, GROUPS, W[p + ".weight"], W[p + ".bias"], eps)

def resnet(p, x, temb):
    h = conv(p + ".conv1", F.silu(gn(p + ".norm1", x)))
    h = h + lin(p + ".time_emb_proj", F.silu(temb))[:, :, None, None]
    h = conv(p + ".conv2", F.silu(gn(p + ".norm2", h)))
    if p + ".conv_shortcut.weight" in W:
        x = conv(p + ".conv_shortcut", x, padding=0)
    return x + h

def attention(p, x, ctx):
    b = x.shape[0]
    q, k, v = lin(p + ".to_q", x), lin(p + ".to_k", ctx), lin(p + ".to_v", ctx)
    split = lambda t: t.view(b, -1, HEADS, t.shape[-1] // HEADS).transpose(1, 2)
    o = F.scaled_dot_product_attention(split(q), split(k), split(v))
    return lin(p + ".to_out.0", o.transpose(1, 2).reshape(b, -1, q.shape[-1]))

def layer_norm(p, x):
    return F.layer_norm(x, x.shape[-1:], W[p + ".weight"], W[p + ".bias"], 1e-5)

def transformer(p, x, ctx):
    b, c, hh, ww = x.shape
    h = conv(p + ".proj_in", gn(p + ".norm", x, 1e-6), padding=0)
    h = h.permute(0, 2, 3, 1).reshape(b, hh * ww, -1)
    t = p + ".transformer_blocks.0"
    h = h + attention(t + ".attn1", layer_norm(t + ".norm1", h), layer_norm(t + ".norm1", h))
    h = h + attention(t + ".attn2", layer_norm(t + ".norm2", h), ctx)
    a, gate = lin(t + ".ff.net.0.proj", layer_norm(t + ".norm3", h)).chunk(2, dim=-1)
    h = h + lin(t + ".ff.net.2", a * F.gelu(gate))
    h = h.reshape(b, hh, ww, -1).permute(0, 3, 1, 2)
    return conv(p + ".proj_out", h, padding=0) + x

def unet(sample, t, ctx):
    b = sample.shape[0]
    half = cfg["block_out_channels"][0] // 2
    freqs = torch.exp(-math.log(10000) * torch.arange(half, dtype=torch.float32) / (half - cfg["freq_shift"]))
    args = t.expand(b)[:, None].float() * freqs[None]
    temb = torch.cat([args.cos(), args.sin()], -1)  # flip_sin_to_cos
    temb = lin("time_embedding.linear_2", F.silu(lin("time_embedding.linear_1", temb)))
    n = len(cfg["down_block_types"])
    factor = 2 ** (n - 1)
    forward_size = any(s % factor for s in sample.shape[-2:])
    h = conv("conv_in", sample)
    skips = [h]
    for i, kind in enumerate(cfg["down_block_types"]):
        for j in range(cfg["layers_per_block"]):
            h = resnet(f"down_blocks.{i}.resnets.{j}", h, temb)
            if kind.startswith("CrossAttn"):
                h = transformer(f"down_blocks.{i}.attentions.{j}", h, ctx)
            skips.append(h)
        if i < n - 1:
            h = conv(f"down_blocks.{i}.downsamplers.0.conv", h, stride=2, padding=cfg["downsample_padding"])
            skips.append(h)
    h = resnet("mid_block.resnets.0", h, temb)
    h = transformer("mid_block.attentions.0", h, ctx)
    h = resnet("mid_block.resnets.1", h, temb)
    for i, kind in enumerate(cfg["up_block_types"]):
        for j in range(cfg["layers_per_block"] + 1):
            h = resnet(f"up_blocks.{i}.resnets.{j}", torch.cat([h, skips.pop()], 1), temb)
            if kind.startswith("CrossAttn"):
                h = transformer(f"up_blocks.{i}.attentions.{j}", h, ctx)
        if i < n - 1:
            size = tuple(skips[-1].shape[-2:]) if forward_size else None
            h = F.interpolate(h, size=size, mode="nearest") if size else F.interpolate(h, scale_factor=2.0, mode="nearest")
            h = conv(f"up_blocks.{i}.upsamplers.0.conv", h)
    return conv("conv_out", F.silu(gn("conv_norm_out", h)))

with torch.no_grad():
    ref = unet(G["unet.sample"], G["unet.timesteps"], G["unet.encoder_hidden_states"])
    err = (ref - G["unet.out"]).abs().max().item()
    print("functional reference vs diffusers golden unet.out: max|diff| =", err)
    assert err < 1e-5, err
    gen = torch.Generator().manual_seed(20240611)
    cases = []
    for shape, t in (([1, 4, 10, 12], 500), ([1, 4, 9, 7], 37)):
        x = torch.randn(*shape, generator=gen)
        ctx = G["unet.encoder_hidden_states"][:1]
        out = unet(x, torch.tensor([t]), ctx)
        cases.append({"shape": shape, "timestep": t, "sample": x.flatten().tolist(), "out": out.flatten().tolist()})
        print(shape, "->", list(out.shape))
json.dump({"made_by": "tests/models/unet/make_odd_size_reference.py", "torch": torch.__version__,
           "encoder_hidden_states": "golden unet.encoder_hidden_states[:1]", "golden_check_max_abs_diff": err,
           "cases": cases}, open(os.path.join(HERE, "odd-size-reference.json"), "w"))
