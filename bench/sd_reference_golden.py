# Checks that the models of bench/sd_reference.py compute what diffusers and transformers computed
# for the tiny-sd checkpoint (tests/fixtures/golden: golden.safetensors, made by make_golden.py):
# UNet output, text encoder hidden states and pooled output, VAE decode, DDIM step and add_noise.
#
#   python3 bench/sd_reference_golden.py tests/fixtures/golden
#
# Prints one JSON line: max |ours - reference| per output (tests/bench/sd.test.ts asserts <= 1e-4).
import json
import os
import sys

import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from sd_reference import DDIM, AutoencoderKL, CLIPTextModel, UNet2DConditionModel  # noqa: E402


def read_safetensors(path):
    """{name: tensor} from a .safetensors file (float32 and int64 only: what the golden files hold)."""
    with open(path, "rb") as f:
        n = int.from_bytes(f.read(8), "little")
        header, data = json.loads(f.read(n)), f.read()
    dtypes = {"F32": torch.float32, "I64": torch.int64}
    out = {}
    for k, v in header.items():
        if k != "__metadata__":
            a, b = v["data_offsets"]
            out[k] = torch.frombuffer(bytearray(data[a:b]), dtype=dtypes[v["dtype"]]).reshape(v["shape"])
    return out


def check_golden(folder):
    """max |ours - reference| for each golden output of the tiny-sd checkpoint."""
    tiny = folder + "/tiny-sd/"
    conf = lambda p: json.load(open(tiny + p))
    unet = UNet2DConditionModel(conf("unet/config.json")).eval()
    unet.load_state_dict(read_safetensors(tiny + "unet/diffusion_pytorch_model.safetensors"))
    vae = AutoencoderKL(conf("vae/config.json")).eval()
    vae.load_state_dict(read_safetensors(tiny + "vae/diffusion_pytorch_model.safetensors"))
    te = CLIPTextModel(conf("text_encoder/config.json")).eval()
    te.load_state_dict({k.removeprefix("text_model."): v for k, v in read_safetensors(tiny + "text_encoder/model.safetensors").items()
                        if not k.endswith("position_ids")})
    g, j = read_safetensors(folder + "/golden.safetensors"), json.load(open(folder + "/golden.json"))
    diff = lambda a, b: (a - b).abs().max().item()
    sched = DDIM(conf("scheduler/scheduler_config.json"))
    out = {"ddim_timesteps_50": sched.set_timesteps(50) == j["ddim_timesteps_50"],
           "sched.alphas_cumprod": diff(torch.tensor(sched.abar), g["sched.alphas_cumprod"])}
    sched.set_timesteps(10)
    with torch.no_grad():
        x, e, ts = g["unet.sample"], g["unet.encoder_hidden_states"], g["unet.timesteps"].tolist()
        out["unet.out"] = diff(torch.cat([unet(x[i:i + 1], ts[i], e[i:i + 1]) for i in range(len(ts))]), g["unet.out"])
        h, pooled = te(g["te.input_ids"])
        out["te.last_hidden_state"], out["te.pooler_output"] = diff(h, g["te.last_hidden_state"]), diff(pooled, g["te.pooler_output"])
        out["vae.decoded_from_mean"] = diff(vae.decode(g["vae.latent_mean"]), g["vae.decoded_from_mean"])
        for t in (981, 1):
            out[f"ddim.step_t{t}_prev"] = diff(sched.step(g["ddim.step_eps"], t, g["ddim.step_sample"]), g[f"ddim.step_t{t}_prev"])
        out["add_noise.t500"] = diff(sched.add_noise(g["ddim.step_sample"], g["add_noise.noise"], 500), g["add_noise.t500"])
    return out


if __name__ == "__main__":
    print(json.dumps({"golden": check_golden(sys.argv[1])}), flush=True)
