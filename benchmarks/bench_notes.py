"""Hand-written analysis appended to the Performance section of RESULTS.md (kept beside the code
that makes the numbers it interprets; the numbers themselves are in the tables above it, and the
"Findings" list is generated from each run)."""

NOTES = """
**Reading the targets.** Fixed quantities first (FlopCounterMode, independent of the machine):
the `paper` network costs 8.55 GFLOP forward per 10-s window (the paper quotes about 8.5),
25.6 GFLOP per clip for a training step (forward + backward + weight gradients) and 17.1 GFLOP
for one gradient to the input (what SHAP and Captum compute; `torch.autograd.grad` skips the
weight gradients). The `small` preset is 16x cheaper (0.54 / 1.6 / 1.1 GFLOP).

1. *Feature caching >= 50% of decode-only* — the fill runs the front end on one torch thread
   per worker (`one_torch_thread` in `midlevel/data/cache.py`), with the blocked front end
   (strided view, 128-frame blocks, sparse filterbank, log in place) and as many worker
   processes as usable cores by default; `train` and `explain` fill the same way. The
   one-process row of the targets table is the figure judged. History: before these changes
   (front end on torch's 2 threads, every intermediate of a clip allocated at once) one
   process reached 14-23 %; the passes are memory-bound and gain nothing from a second
   thread on these two vCPUs, and lose to it under load (see 7). The two-process row can
   read lower than one process on this machine: two workers share two busy vCPUs with the
   decoder. What is left beside decoding: resampling (soxr HQ, about 10 ms a clip), the
   per-entry `fsync` (1-9 ms a file) and copies.
2. *Training end to end >= 85% of in-memory* — missed by design since the BatchNorm fix of
   issue 9, and not a data-loading cost. `fit` times each epoch whole: the training steps,
   then the BatchNorm statistics re-estimated with dropout off (a forward pass over every
   training window, in batches of `bn_batch_size`) and the whole-clip validation pass. The
   two passes after the steps cost as much as the steps or more (no backward pass, but every
   window of every clip), so the ratio sits near 50% on a quiet machine. The steps themselves
   are not slower than in memory: in the targets table the `small` epoch's steps run 1.2x a
   plain PyTorch loop's, and the whole `fit` epoch takes about twice the loop's steps.
   Data: `fit` holds every spectrogram in memory when they fit its memory budget (reading the
   filled cache takes about a millisecond per clip, once; beyond the budget it streams, item
   7) and a batch is 8 slices and a `torch.stack`.
   Checkpoints are written after the timed part of each epoch. (Before the re-estimation
   existed, one-thread A/B tests interleaving in-memory steps and `fit` epochs gave about
   100%.)
3. *`paper` >= 80% of matmul GFLOP/s* — the convolutions themselves are not the problem:
   timed one by one (layer table), the oneDNN kernels of layers 2-9 run at or near the 2048²
   matmul, the deepest ones above it; only the first (one input channel, 5x5 stride 2) is slow,
   and it is 1% of the FLOPs and 1-2% of the time. The step loses its speed around them:
   batch norm, ReLU, pooling and dropout (no FLOPs, memory-bound, each a parallel region) and
   Adam's per-tensor update, together 15-30% of the profiled step depending on the load, and
   the two threads' synchronization (7). On one thread the same step ran at 80-93 GFLOP/s, the
   one-thread matmul speed. So the ratio moves with the load between runs (56-101% in the runs
   made while writing this). `torch.optim.Adam(..., fused=True)` in `midlevel/training/
   loop.py` cut the optimizer's time by half or more in three of the four full runs and lost in
   one (Adam table: about a tenth of a `paper` step); bfloat16 autocast is the lever beyond
   fp32 (2x on inference here, table (c)). On the Xeon (AVX-512) the kernels themselves got
   faster in the channels-last (NHWC) layout, oneDNN's native one: `fit` and `Run` now place
   models that way on the CPU (`midlevel.models.place`). Paired with the contiguous layout in
   12 interleaved rounds of this step, 1.07x (10-90 % of rounds 1.03-1.14x; 273 -> 298
   GFLOP/s); the layout line of table (b) repeats the pairing in every run. Paired with the
   matmul as well (2026-12-05, quiet machine, after the 22:57 run: one 2048² sample, then
   two steps, 10 rounds; matmul 350-418, training 298-330 GFLOP/s), the per-round ratio is
   0.80 (95 % interval 0.78-0.83): at the target, not reliably above it. The target row
   compares unpaired medians of 4 steps and 3 matmul samples (70 % in the 22:57 run).
4. *Bottleneck contributions <= 5% added* — met by orders of magnitude: the contribution table
   is a 7-concept x 8-target product and a pandas frame, milliseconds per batch of clips,
   while the prediction it needs is a forward pass per 10-s window. `explain_clips` minus
   `Run.predict` is within the noise of the two measurements; the "table alone" figure is the
   direct measurement.
5. *SHAP GradientExplainer <= 3.5 s per 10-s clip (paper)* — its work is 32 expected-gradient
   samples of 17.1 GFLOP (547 GFLOP). The explainer and the expected value are built once per
   `Attributor`, background and input length (before, every call rebuilt them: 33 more
   forwards of 8.5 GFLOP, a third of the work, and the clip took 5.2 s on a quiet machine),
   and attributions stay on the model's device; `--bf16` offers bfloat16 autocast on CUDA.
   DeepExplainer's hooks keep a 32-sample batch of activations alive: about 1.8 GB for one
   10-s clip with the paper preset, growing linearly with clip length and background size
   (table (f) shows the same linear growth for GradientExplainer).
6. *Attribution calls against the direct library call.* Each method class makes the call a
   user would write, with the explainer or captum object built once per model and input
   length; what it adds per call (input checks, the cached reference, seeding on a forked
   generator for the sampling methods) is well under a millisecond. So its ratio reads parity
   within the noise floor printed under the table (the same direct call timed against itself).
   Grad-CAM is the exception that gains: its gradient starts at a layer, not at the input, so
   it freezes the weights during its call and autograd records no graph for the forward pass
   up to that layer (1.11-1.16x the direct call, `small` and `paper`, 1 and 2 threads,
   measured alone; the same values). Freezing gains nothing for methods whose gradient
   starts at the input (Integrated Gradients, occlusion) and cost SHAP's DeepExplainer about
   10 %, so they do not freeze.
7. *Threads on this machine.* The two vCPUs do not give two cores' worth of speed while
   other jobs run: at a load of about 2.5, a 2048² fp32 matmul ran at 91-94 GFLOP/s on one
   torch thread and 84-86 GFLOP/s on two; a `paper` training step took 2.2-2.5 s on one and
   2.7-4.1 s on two, a `small` one 205 ms against 382 ms (batch 8). Every parallel region of
   two threads waits for whichever is descheduled, so the cost grows with the number of
   operators, not FLOPs: the `small` preset, Adam's for-loop (31 parameter tensors x 7
   operators), the front end's element-wise passes suffer most ("one thread" line of table
   (b), front-end table of (a)). The figures above use torch's default (2 threads), as users
   get it; `--threads 1` runs the whole benchmark on one, and the quick benchmark (and its
   test) always does. Where throughput matters on such machines: one torch thread per
   process, and processes (`fill(jobs=...)`, DDP) for parallelism. The fused or foreach Adam
   (`torch.optim.Adam(..., fused=True)`) removes most of the optimizer's operators.
8. *Front end against the librosa pipeline (>= 2x)* — at the line on this machine, not
   reliably above it: 2.04-2.10x in the runs of 2026-12-05 and -06, 1.92x (1.86-2.06x) in a
   run of 2026-12-07 and 1.96-2.10x in three repeats of the pair right after it, 2.06x in the
   next full run. The package's side is unchanged since 2026-12-05; the ceiling (librosa over
   the FFTs alone) moved from 3.7x to 5.1x between those runs, so the FFT's own timing moves
   the ratio. Both sides run the same pocketfft; what the package saves is the framing, the
   magnitude and the sparse filterbank around it.
9. *Memory.* Importing torch (this CUDA build) takes about 0.7 GB of resident memory before
   any work. Training holds the spectrograms in memory when they fit its budget
   (`max_memory`): 149 bands x 31.25 frames/s x 4 bytes
   = 18.6 kB per second of audio (112 MB for the 105 minutes of Soundtracks, 1.3 GB for
   the 5,000 15-s clips of the Mid-level dataset), linear in the dataset (table (f)); beyond
   it training streams from the feature cache and stays flat (table (g)); cache filling
   streams one clip at a time and stays flat.
"""
