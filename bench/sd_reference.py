# The PyTorch side of bench/sd.ts: Stable Diffusion v1's UNet, VAE and CLIP text encoder in plain
# PyTorch (no diffusers), with the state-dict keys and shapes of the manifest and the math of
# src/models (SDPA attention, GroupNorm/LayerNorm eps as the configs say), timing one case per run.
#
#   python3 bench/sd_reference.py --manifest sd-v1-manifest.json --case stageA --size 512 \
#       --iters 3 --warmup 1 --threads 2 [--device cpu|cuda] [--seed 0]
#
# Prints one JSON line: the per-iteration ms, ru_maxrss, the number of manifest keys checked, losses.
# Cases: stageA, stageB-full, stageB-lora, sample-cfg, vae-decode, text-encode, and `activations`
# (bytes autograd saves in one UNet training forward at --size: the activation term of the memory
# estimate in bench/sd.ts). The key check runs first on the meta device (nothing allocated).
# bench/sd_reference_golden.py checks that these models compute what diffusers and transformers computed.
import argparse
import json
import math
import re
import resource
import sys
import time

import torch
import torch.nn.functional as F
from torch import nn


# ---- UNet2DConditionModel (SD v1 layout) -----------------------------------------------------------

class Linear(nn.Linear):
    """nn.Linear with an optional LoRA side path y += B(A(x)), kept outside the module tree (keys unchanged)."""

    def forward(self, x):
        y = F.linear(x, self.weight, self.bias)
        lora = self.__dict__.get("lora")
        return y if lora is None else y + F.linear(F.linear(x, lora[0]), lora[1])


def conv(cin, cout, k, stride=1, padding=None):
    return nn.Conv2d(cin, cout, k, stride=stride, padding=(k - 1) // 2 if padding is None else padding)


class ResnetBlock2D(nn.Module):
    """conv2(silu(norm2(conv1(silu(norm1(x))) + proj(silu(temb))))) + shortcut(x); temb_ch None: no time input (VAE)."""

    def __init__(self, cin, cout, temb_ch, groups, eps, scale=1.0):
        super().__init__()
        self.norm1 = nn.GroupNorm(groups, cin, eps)
        self.conv1 = conv(cin, cout, 3)
        if temb_ch is not None:
            self.time_emb_proj = Linear(temb_ch, cout)
        self.norm2 = nn.GroupNorm(groups, cout, eps)
        self.conv2 = conv(cout, cout, 3)
        if cin != cout:
            self.conv_shortcut = conv(cin, cout, 1)
        self.scale = scale

    def forward(self, x, temb=None):
        h = self.conv1(F.silu(self.norm1(x)))  # [B, Cout, H, W]
        if temb is not None:
            h = h + self.time_emb_proj(F.silu(temb))[:, :, None, None]
        h = self.conv2(F.silu(self.norm2(h)))
        s = self.conv_shortcut(x) if hasattr(self, "conv_shortcut") else x
        out = s + h
        return out if self.scale == 1 else out / self.scale


class Attention(nn.Module):
    def __init__(self, dim, ctx_dim, heads, bias=False):
        super().__init__()
        self.heads = heads
        self.to_q = Linear(dim, dim, bias=bias)
        self.to_k = Linear(ctx_dim, dim, bias=bias)
        self.to_v = Linear(ctx_dim, dim, bias=bias)
        self.to_out = nn.ModuleList([Linear(dim, dim), nn.Dropout(0.0)])

    def forward(self, x, ctx=None):
        src = x if ctx is None else ctx
        b, _, d = x.shape
        split = lambda t: t.view(b, -1, self.heads, d // self.heads).transpose(1, 2)  # [B, heads, N, dh]
        h = F.scaled_dot_product_attention(split(self.to_q(x)), split(self.to_k(src)), split(self.to_v(src)))
        return self.to_out[0](h.transpose(1, 2).reshape(b, -1, d))  # [B, N, dim]


class GEGLU(nn.Module):
    def __init__(self, dim, inner):
        super().__init__()
        self.proj = Linear(dim, 2 * inner)

    def forward(self, x):
        h, gate = self.proj(x).chunk(2, -1)
        return h * F.gelu(gate)


class FeedForward(nn.Module):
    def __init__(self, dim):
        super().__init__()
        self.net = nn.ModuleList([GEGLU(dim, 4 * dim), nn.Dropout(0.0), Linear(4 * dim, dim)])

    def forward(self, x):
        return self.net[2](self.net[0](x))


class BasicTransformerBlock(nn.Module):
    def __init__(self, dim, ctx_dim, heads):
        super().__init__()
        self.norm1 = nn.LayerNorm(dim, eps=1e-5)
        self.attn1 = Attention(dim, dim, heads)
        self.norm2 = nn.LayerNorm(dim, eps=1e-5)
        self.attn2 = Attention(dim, ctx_dim, heads)
        self.norm3 = nn.LayerNorm(dim, eps=1e-5)
        self.ff = FeedForward(dim)

    def forward(self, x, ctx):
        h = x + self.attn1(self.norm1(x))
        h = h + self.attn2(self.norm2(h), ctx)
        return h + self.ff(self.norm3(h))


class Transformer2DModel(nn.Module):
    """GroupNorm (eps 1e-6), 1x1 proj_in, one block over the H*W tokens, 1x1 proj_out, plus x."""

    def __init__(self, ch, ctx_dim, heads, groups):
        super().__init__()
        self.norm = nn.GroupNorm(groups, ch, 1e-6)
        self.proj_in = conv(ch, ch, 1)
        self.transformer_blocks = nn.ModuleList([BasicTransformerBlock(ch, ctx_dim, heads)])
        self.proj_out = conv(ch, ch, 1)

    def forward(self, x, ctx):
        b, c, hh, ww = x.shape
        h = self.proj_in(self.norm(x)).permute(0, 2, 3, 1).reshape(b, hh * ww, -1)  # [B, HW, C]
        for blk in self.transformer_blocks:
            h = blk(h, ctx)
        h = h.reshape(b, hh, ww, -1).permute(0, 3, 1, 2).contiguous()  # [B, C, H, W]
        return self.proj_out(h) + x


class Downsample(nn.Module):
    def __init__(self, ch, padding):
        super().__init__()
        self.padding = padding
        self.conv = conv(ch, ch, 3, stride=2, padding=padding)

    def forward(self, x):
        return self.conv(F.pad(x, (0, 1, 0, 1)) if self.padding == 0 else x)


class Upsample(nn.Module):
    def __init__(self, ch):
        super().__init__()
        self.conv = conv(ch, ch, 3)

    def forward(self, x):
        return self.conv(F.interpolate(x, scale_factor=2.0, mode="nearest"))


class Block(nn.Module):
    """A down or up block of the UNet: resnets (each followed by a transformer when `attn`), then a resampler."""

    def __init__(self, resnets, attentions, sampler, kind):
        super().__init__()
        if attentions is not None:
            self.attentions = nn.ModuleList(attentions)
        self.resnets = nn.ModuleList(resnets)
        if sampler is not None:
            setattr(self, kind, nn.ModuleList([sampler]))

    def layers(self):
        attns = getattr(self, "attentions", None)
        return [(r, attns[i] if attns is not None else None) for i, r in enumerate(self.resnets)]


class UNet2DConditionModel(nn.Module):
    def __init__(self, c):
        super().__init__()
        boc, n, g, eps = c["block_out_channels"], len(c["down_block_types"]), c["norm_num_groups"], c["norm_eps"]
        heads, ctx, layers, temb = c["attention_head_dim"], c["cross_attention_dim"], c["layers_per_block"], boc[0] * 4
        self.flip, self.shift = c["flip_sin_to_cos"], c["freq_shift"]
        self.conv_in = conv(c["in_channels"], boc[0], 3)
        self.time_embedding = nn.Module()
        self.time_embedding.linear_1 = Linear(boc[0], temb)
        self.time_embedding.linear_2 = Linear(temb, temb)
        res = lambda i, o, s=1.0: ResnetBlock2D(i, o, temb, g, eps, s)
        tr = lambda ch: Transformer2DModel(ch, ctx, heads, g)
        self.down_blocks = nn.ModuleList()
        out = boc[0]
        for i, t in enumerate(c["down_block_types"]):
            cin, out = out, boc[i]
            attn = [tr(out) for _ in range(layers)] if t == "CrossAttnDownBlock2D" else None
            rs = [res(cin if j == 0 else out, out) for j in range(layers)]
            self.down_blocks.append(Block(rs, attn, Downsample(out, c["downsample_padding"]) if i < n - 1 else None, "downsamplers"))
        self.up_blocks = nn.ModuleList()
        rev = list(reversed(boc))
        out = rev[0]
        for i, t in enumerate(c["up_block_types"]):
            prev, out, cin = out, rev[i], rev[min(i + 1, n - 1)]
            rs = [res((prev if j == 0 else out) + (cin if j == layers else out), out) for j in range(layers + 1)]
            attn = [tr(out) for _ in range(layers + 1)] if t == "CrossAttnUpBlock2D" else None
            self.up_blocks.append(Block(rs, attn, Upsample(out) if i < n - 1 else None, "upsamplers"))
        s = c["mid_block_scale_factor"]
        self.mid_block = nn.Module()
        self.mid_block.attentions = nn.ModuleList([tr(boc[-1])])
        self.mid_block.resnets = nn.ModuleList([res(boc[-1], boc[-1], s), res(boc[-1], boc[-1], s)])
        self.conv_norm_out = nn.GroupNorm(g, boc[0], eps)
        self.conv_out = conv(boc[0], c["out_channels"], 3)

    def time_proj(self, t, dim):
        """Sinusoidal embedding [B] -> [B, dim], the float32 ops of diffusers' get_timestep_embedding."""
        half = dim // 2
        freqs = torch.exp(torch.arange(0, half, dtype=torch.float32, device=t.device) * -math.log(10000) / (half - self.shift))
        args = t.float()[:, None] * freqs[None]
        a, b = (args.cos(), args.sin()) if self.flip else (args.sin(), args.cos())
        return torch.cat([a, b], -1)

    def forward(self, x, t, ctx):
        b = x.shape[0]
        if ctx.shape[0] != b:
            ctx = ctx.expand(b, -1, -1)
        tt = torch.tensor([float(t)], device=x.device).expand(b)
        te = self.time_embedding
        emb = te.linear_2(F.silu(te.linear_1(self.time_proj(tt, self.conv_in.out_channels).to(x.dtype))))  # [B, 4*C0]
        h = self.conv_in(x)
        skips = [h]
        for blk in self.down_blocks:
            for r, a in blk.layers():
                h = r(h, emb)
                h = a(h, ctx) if a is not None else h
                skips.append(h)
            for d in getattr(blk, "downsamplers", []):
                h = d(h)
                skips.append(h)
        m = self.mid_block
        h = m.resnets[1](m.attentions[0](m.resnets[0](h, emb), ctx), emb)
        for blk in self.up_blocks:
            for r, a in blk.layers():
                h = r(torch.cat([h, skips.pop()], 1), emb)
                h = a(h, ctx) if a is not None else h
            for u in getattr(blk, "upsamplers", []):
                h = u(h)
        return self.conv_out(F.silu(self.conv_norm_out(h)))  # [B, 4, h, w]


# ---- AutoencoderKL ---------------------------------------------------------------------------------

class VaeAttention(nn.Module):
    """One head over the H*W positions (group_norm, to_q/k/v, to_out.0), plus x."""

    def __init__(self, ch, groups):
        super().__init__()
        self.group_norm = nn.GroupNorm(groups, ch, 1e-6)
        self.to_q, self.to_k, self.to_v = Linear(ch, ch), Linear(ch, ch), Linear(ch, ch)
        self.to_out = nn.ModuleList([Linear(ch, ch)])

    def forward(self, x):
        b, c, hh, ww = x.shape
        h = self.group_norm(x).view(b, c, hh * ww).transpose(1, 2)  # [B, HW, C]
        a = F.scaled_dot_product_attention(self.to_q(h), self.to_k(h), self.to_v(h))
        return self.to_out[0](a).transpose(1, 2).reshape(b, c, hh, ww) + x


class VaeMid(nn.Module):
    def __init__(self, ch, groups):
        super().__init__()
        self.attentions = nn.ModuleList([VaeAttention(ch, groups)])
        self.resnets = nn.ModuleList([ResnetBlock2D(ch, ch, None, groups, 1e-6) for _ in range(2)])

    def forward(self, x):
        return self.resnets[1](self.attentions[0](self.resnets[0](x)))


class Coder(nn.Module):
    """The VAE encoder (down=True: image -> moments) or decoder (latent -> image)."""

    def __init__(self, c, down):
        super().__init__()
        g, ch, n, z = c["norm_num_groups"], c["block_out_channels"], len(c["block_out_channels"]), c["latent_channels"]
        chs = ch if down else list(reversed(ch))
        self.down = down
        self.conv_in = conv(c["in_channels"] if down else z, chs[0], 3)
        blocks = nn.ModuleList()
        for i, out in enumerate(chs):
            cin = chs[i - 1] if i > 0 else chs[0]
            k = c["layers_per_block"] + (0 if down else 1)
            last = i == n - 1
            sampler = None if last else (Downsample(out, 0) if down else Upsample(out))
            blocks.append(Block([ResnetBlock2D(cin if j == 0 else out, out, None, g, 1e-6) for j in range(k)], None, sampler,
                                "downsamplers" if down else "upsamplers"))
        if down:
            self.down_blocks = blocks
        else:
            self.up_blocks = blocks
        self.mid_block = VaeMid(chs[-1] if down else chs[0], g)
        self.conv_norm_out = nn.GroupNorm(g, chs[-1], 1e-6)
        self.conv_out = conv(chs[-1], 2 * z if down else c["out_channels"], 3)

    def forward(self, x):
        h = self.conv_in(x)
        if not self.down:
            h = self.mid_block(h)
        for blk in (self.down_blocks if self.down else self.up_blocks):
            for r, _ in blk.layers():
                h = r(h)
            for s in getattr(blk, "downsamplers" if self.down else "upsamplers", []):
                h = s(h)
        if self.down:
            h = self.mid_block(h)
        return self.conv_out(F.silu(self.conv_norm_out(h)))


class AutoencoderKL(nn.Module):
    def __init__(self, c):
        super().__init__()
        z = c["latent_channels"]
        self.encoder = Coder(c, True)
        self.decoder = Coder(c, False)
        self.quant_conv = conv(2 * z, 2 * z, 1)
        self.post_quant_conv = conv(z, z, 1)

    def decode(self, z):
        return self.decoder(self.post_quant_conv(z))  # [B, 3, 8h, 8w]


# ---- CLIPTextModel ---------------------------------------------------------------------------------

class CLIPEncoderLayer(nn.Module):
    def __init__(self, d, inner, heads, eps):
        super().__init__()
        self.heads = heads
        self.self_attn = nn.Module()
        for k in ("k_proj", "v_proj", "q_proj", "out_proj"):
            setattr(self.self_attn, k, Linear(d, d))
        self.layer_norm1 = nn.LayerNorm(d, eps=eps)
        self.mlp = nn.Module()
        self.mlp.fc1, self.mlp.fc2 = Linear(d, inner), Linear(inner, d)
        self.layer_norm2 = nn.LayerNorm(d, eps=eps)

    def forward(self, x):
        b, l, d = x.shape
        a, y = self.self_attn, self.layer_norm1(x)
        heads = lambda t: t.view(b, l, self.heads, d // self.heads).transpose(1, 2)
        o = F.scaled_dot_product_attention(heads(a.q_proj(y)), heads(a.k_proj(y)), heads(a.v_proj(y)), is_causal=True)
        h = x + a.out_proj(o.transpose(1, 2).reshape(b, l, d))
        m = self.mlp.fc1(self.layer_norm2(h))
        return h + self.mlp.fc2(m * torch.sigmoid(1.702 * m))  # quick_gelu


class CLIPTextModel(nn.Module):
    def __init__(self, c):
        super().__init__()
        assert c["hidden_act"] == "quick_gelu", c["hidden_act"]
        d, eps = c["hidden_size"], c["layer_norm_eps"]
        self.eos = c["eos_token_id"]
        self.embeddings = nn.Module()
        self.embeddings.token_embedding = nn.Embedding(c["vocab_size"], d)
        self.embeddings.position_embedding = nn.Embedding(c["max_position_embeddings"], d)
        self.encoder = nn.Module()
        self.encoder.layers = nn.ModuleList(
            [CLIPEncoderLayer(d, c["intermediate_size"], c["num_attention_heads"], eps) for _ in range(c["num_hidden_layers"])])
        self.final_layer_norm = nn.LayerNorm(d, eps=eps)

    def forward(self, ids):
        e = self.embeddings
        h = e.token_embedding(ids) + e.position_embedding.weight[: ids.shape[1]]  # [B, L, D]
        for layer in self.encoder.layers:
            h = layer(h)
        h = self.final_layer_norm(h)
        pooled = h.gather(1, (ids == self.eos).int().argmax(-1).view(-1, 1, 1).expand(-1, 1, h.shape[2])).squeeze(1)
        return h, pooled


# ---- DDIM (scaled_linear betas, leading timesteps) ---------------------------------------------------

class DDIM:
    def __init__(self, c):
        self.n = c["num_train_timesteps"]
        betas = torch.linspace(c["beta_start"] ** 0.5, c["beta_end"] ** 0.5, self.n, dtype=torch.float32) ** 2
        self.abar = torch.cumprod(1.0 - betas, 0).tolist()
        self.final = 1.0 if c["set_alpha_to_one"] else self.abar[0]
        self.offset = c["steps_offset"]

    def set_timesteps(self, k):
        self.k = k
        return [i * (self.n // k) + self.offset for i in reversed(range(k))]

    def add_noise(self, x0, noise, t):
        return math.sqrt(self.abar[t]) * x0 + math.sqrt(1 - self.abar[t]) * noise

    def step(self, eps, t, x):
        prev = t - self.n // self.k
        a, ap = self.abar[t], (self.abar[prev] if prev >= 0 else self.final)
        x0 = (x - math.sqrt(1 - a) * eps) / math.sqrt(a)
        return x0 * math.sqrt(ap) + eps * math.sqrt(1 - ap)


# ---- the checks and the cases -------------------------------------------------------------------------

BUILDERS = {"unet": UNet2DConditionModel, "vae": AutoencoderKL, "text_encoder": CLIPTextModel}


def check_keys(manifest):
    """Builds each component on meta and asserts its state dict equals the manifest's, key by key and shape by shape."""
    counts = {}
    for name, build in BUILDERS.items():
        with torch.device("meta"):
            sd = {k: list(v.shape) for k, v in build(manifest["configs"][name]).state_dict().items()}
        want = manifest["state_dict_shapes"][name]
        missing, unexpected = sorted(set(want) - set(sd)), sorted(set(sd) - set(want))
        bad = [f"{k}: {sd[k]} != {want[k]}" for k in sorted(set(sd) & set(want)) if sd[k] != list(want[k])]
        if missing or unexpected or bad:
            raise SystemExit(f"{name}: state dict differs from the manifest: missing {missing}, unexpected {unexpected}, mis-shaped {bad}")
        counts[name] = len(sd)
    return counts


def build(manifest, name, device):
    torch.manual_seed(0)  # default PyTorch init (uniform +-1/sqrt(fan_in)), as ours
    return BUILDERS[name](manifest["configs"][name]).to(device).eval().requires_grad_(False)


def attach_lora(unet, rank, gen):
    """rank-r adapters on attn1/attn2 to_q, to_k, to_v, to_out.0 (A [r, in] uniform, B [out, r] zero, scale 1)."""
    params, pattern = [], re.compile(r"\.attn[12]\.(to_q|to_k|to_v|to_out\.0)$")
    for name, m in unet.named_modules():
        if pattern.search("." + name) and isinstance(m, Linear):
            dev = m.weight.device
            a = nn.Parameter((torch.rand(rank, m.in_features, generator=gen) * 2 - 1).div_(math.sqrt(m.in_features)).to(dev))
            b = nn.Parameter(torch.zeros(m.out_features, rank, device=dev))
            m.__dict__["lora"] = (a, b)
            params += [a, b]
    return params


def run_case(args, manifest):
    dev, s = torch.device(args.device), args.size
    sync = (lambda: torch.cuda.synchronize()) if dev.type == "cuda" else (lambda: None)
    gen = torch.Generator().manual_seed(args.seed)
    sched = DDIM(manifest["configs"]["scheduler"])
    info = {"losses": []}
    if args.case == "vae-decode":
        vae = build(manifest, "vae", dev)
        latent = torch.randn(1, 4, s // 8, s // 8, generator=gen).to(dev)
        scale = manifest["configs"]["vae"]["scaling_factor"]

        def step(_):
            with torch.no_grad():
                vae.decode(latent / scale)
        return vae, step, info
    if args.case == "text-encode":
        te = build(manifest, "text_encoder", dev)
        c = manifest["configs"]["text_encoder"]
        ids = torch.randint(0, c["vocab_size"], (2, c["max_position_embeddings"]), generator=gen).to(dev)

        def step(_):
            with torch.no_grad():
                te(ids)
        return te, step, info

    unet = build(manifest, "unet", dev)
    ctx_dim = manifest["configs"]["unet"]["cross_attention_dim"]
    latent = torch.randn(1, 4, s // 8, s // 8, generator=gen).to(dev)  # [1, 4, h, w]
    emb = torch.randn(1, 77, ctx_dim, generator=gen).to(dev)  # [1, 77, D]
    if args.case == "sample-cfg":
        embeds = torch.cat([torch.randn(1, 77, ctx_dim, generator=gen).to(dev), emb])  # [uncond; cond]
        ts = sched.set_timesteps(50)
        state = {"x": latent}

        def step(i):
            t, x = ts[i % len(ts)], state["x"]
            with torch.no_grad():
                u, c = unet(torch.cat([x, x]), t, embeds).chunk(2)
                state["x"] = sched.step(u + (c - u) * 7.5, t, x)
        return unet, step, info
    if args.case == "activations":
        return unet, None, {"saved_bytes": saved_bytes(unet, sched, latent, emb)}

    if args.case == "stageA":
        cond = emb.clone().requires_grad_(True)
        params = [cond]
    elif args.case == "stageB-full":
        cond = emb
        params = list(unet.requires_grad_(True).parameters())
        unet.train()
    elif args.case == "stageB-lora":
        cond = emb
        params = attach_lora(unet, 4, gen)
        unet.train()
    else:
        raise SystemExit(f"unknown case {args.case}")
    opt = torch.optim.Adam(params, lr={"stageA": 1e-3, "stageB-full": 2e-6}.get(args.case, 1e-4))  # as bench/sd-case.ts

    def step(_):
        t = int(torch.randint(0, sched.n, (1,), generator=gen).item())
        noise = torch.randn(latent.shape, generator=gen).to(dev)
        opt.zero_grad(set_to_none=True)
        pred = unet(sched.add_noise(latent, noise, t), t, cond)
        loss = F.mse_loss(pred.float(), noise.float())
        loss.backward()
        opt.step()
        info["losses"].append(loss.item())
    return unet, step, info


def saved_bytes(unet, sched, latent, emb):
    """Bytes of the distinct tensors autograd saves in one training forward (all UNet weights trainable)."""
    seen = {}

    def pack(t):
        st = t.untyped_storage()
        seen[st.data_ptr()] = st.nbytes()
        return t
    unet.requires_grad_(True)
    noise = torch.randn_like(latent)
    with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
        loss = F.mse_loss(unet(sched.add_noise(latent, noise, 500), 500, emb), noise)
    params = {p.untyped_storage().data_ptr() for p in unet.parameters()}
    total = sum(n for ptr, n in seen.items() if ptr not in params)
    del loss
    return total


def rss_kb():
    """The resident set size now, KB (Linux; None elsewhere)."""
    try:
        with open("/proc/self/statm") as f:
            return int(f.read().split()[1]) * resource.getpagesize() // 1024
    except OSError:
        return None


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--manifest", required=True)
    p.add_argument("--case", required=True)
    p.add_argument("--size", type=int, default=512)
    p.add_argument("--iters", type=int, default=3)
    p.add_argument("--warmup", type=int, default=1)
    p.add_argument("--threads", type=int, default=0)
    p.add_argument("--device", default="cpu")
    p.add_argument("--seed", type=int, default=0)
    args = p.parse_args()
    if args.threads > 0:
        torch.set_num_threads(args.threads)
    with open(args.manifest) as f:
        manifest = json.load(f)
    keys = check_keys(manifest)
    if args.device.startswith("cuda"):
        torch.cuda.reset_peak_memory_stats()
    model, step, info = run_case(args, manifest)
    built = rss_kb()
    samples = []
    for i in range(args.warmup + args.iters if step else 0):
        t0 = time.perf_counter()
        step(i)
        if args.device.startswith("cuda"):
            torch.cuda.synchronize()
        if i >= args.warmup:
            samples.append((time.perf_counter() - t0) * 1000)
    out = {
        "impl": "torch", "case": args.case, "size": args.size, "samples_ms": samples,
        "maxrss_kb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss, "rss_built_kb": built,
        "params": sum(p.numel() for p in model.parameters()), "keys": keys, "keys_total": sum(keys.values()),
        "threads": torch.get_num_threads(), "torch": torch.__version__, "python": sys.version.split()[0], **info,
    }
    if args.device.startswith("cuda"):
        out["cuda_peak_bytes"] = torch.cuda.max_memory_allocated()
    print(json.dumps(out), flush=True)


if __name__ == "__main__":
    main()
