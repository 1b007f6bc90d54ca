"""The planted event that moves (``EventTask(placement="moving")``): where the events are,
what they hold, and that a model trained on it reads the event, not the distractor."""
import numpy as np
import pytest
import torch

from midlevel.errors import ArgumentError
from midlevel.testing.events import EventTask, stripes


def _apart(a, b):
    return a[1] <= b[0] or a[0] >= b[1] or a[3] <= b[2] or a[2] >= b[3]


def test_fixed_placement_draws_the_sample_and_names_its_distractors():
    task = EventTask()
    c = task.draw(40, seed=7)
    x, y = task.sample(40, seed=7)
    assert torch.equal(c.x, x) and torch.equal(c.y, y)
    assert set(c.boxes) == {task.box}
    for i, d in enumerate(c.distractors):
        assert d is not None and _apart(d, task.box)
        b0, b1, f0, f1 = d
        # the distractor's bins hold its strength above the background's [0, 0.3)
        patch = c.x[i, 0, b0:b1, f0:f1].numpy()
        assert patch.min() >= c.distractor_strength[i] - 1e-6
        assert patch.max() < c.distractor_strength[i] + EventTask.BACKGROUND + 1e-6


def test_stripes_carry_the_same_energy_in_two_orientations():
    tone, clicks = stripes(6, 10, across="bands"), stripes(6, 10, across="frames")
    assert tone.mean() == pytest.approx(1) and clicks.mean() == pytest.approx(1)
    assert (tone[1::2] == 0).all() and (tone[0::2] > 0).all()
    assert (clicks[:, 1::2] == 0).all() and (clicks[:, 0::2] > 0).all()
    odd = stripes(5, 7, across="bands")  # an odd count of bands keeps the mean at 1
    assert odd.mean() == pytest.approx(1)
    with pytest.raises(ArgumentError, match="across"):
        stripes(4, 4, across="time")


def test_moving_events_move_hold_a_tone_and_stay_apart_from_the_clicks():
    task = EventTask(placement="moving")
    h, w = task.shape
    c = task.draw(200, seed=3)
    assert len(set(c.boxes)) > 100  # the box moves
    starts = np.array([b[0] for b in c.boxes])
    assert starts.min() == 0 and starts.max() == task.n_bands - h  # the whole range is drawn
    x = c.x[:, 0].numpy()
    for i, box in enumerate(c.boxes):
        b0, b1, f0, f1 = box
        assert b1 - b0 == h and f1 - f0 == w
        event = x[i, b0:b1, f0:f1]
        # tone: every other band carries 2 s above the background, the others none
        on, off = event[0::2].mean(), event[1::2].mean()
        assert on - off == pytest.approx(2 * c.strength[i], abs=0.08)
        d = c.distractors[i]
        assert d is not None and _apart(box, d)
        clicks = x[i, d[0]:d[1], d[2]:d[3]]
        on, off = clicks[:, 0::2].mean(), clicks[:, 1::2].mean()
        assert on - off == pytest.approx(2 * c.distractor_strength[i], abs=0.08)
    # the target is the event's strength, not the distractor's
    assert np.corrcoef(c.y[:, 0].numpy(), c.strength)[0, 1] > 0.95
    assert abs(np.corrcoef(c.y[:, 0].numpy(), c.distractor_strength)[0, 1]) < 0.2
    # its own stream: the fixed task's clips are not the moving task's
    assert not torch.equal(c.x, EventTask().sample(200, seed=3)[0])


def test_moving_task_refuses_what_needs_one_box():
    task = EventTask(placement="moving")
    x, y = task.sample(4, seed=0)
    with pytest.raises(ArgumentError, match="fixed placement"):
        task.train_model(n=16, steps=1, removal=0.5)
    with pytest.raises(ArgumentError, match="fixed placement"):
        task.box_energy(x)
    with pytest.raises(ArgumentError, match="fixed placement"):
        task.removed(x, y, x.mean(0, keepdim=True), torch.ones_like(x))
    with pytest.raises(ArgumentError, match="placement"):
        EventTask(placement="random")
    with pytest.raises(ArgumentError, match="inside"):
        EventTask(n_bands=8, box=(4, 12, 0, 4))
    with pytest.raises(ArgumentError, match="2 bands x 2 frames"):  # stripes need two
        EventTask(box=(3, 4, 0, 6), placement="moving")


def test_a_model_trained_on_moving_events_reads_the_event_not_the_clicks():
    torch.set_num_threads(1)
    task = EventTask(placement="moving")
    model = task.train_model(n=256, steps=150, seed=3)
    assert task.held_out_r2(model) > 0.8
    c = task.draw(64, seed=21)
    ref = task.sample(32, seed=2)[0].mean(0)

    def answer(z):
        with torch.no_grad():
            return model.unscale(model(z)).targets[:, 0].numpy()

    def without(boxes):
        z = c.x.clone()
        for i, (b0, b1, f0, f1) in enumerate(boxes):
            z[i, :, b0:b1, f0:f1] = ref[:, b0:b1, f0:f1]
        return z

    base = answer(c.x)
    event_drop = base - answer(without(c.boxes))
    click_drop = base - answer(without(c.distractors))
    # removing the event takes its strength away; removing the clicks leaves the answer
    assert np.corrcoef(event_drop, c.strength)[0, 1] > 0.8
    assert np.median(np.abs(click_drop)) < 0.25 * np.median(np.abs(event_drop))


def test_the_event_measure_is_the_tones_contrast_and_blends_move_it_linearly():
    """``event_measure``: the tone's contrast over each clip's own box follows the event's
    strength, is untouched by the clicks and near 0 on the clips' mean; ``blend`` gives IG's
    path points with targets that move by ``(1 - alpha) (m(reference) - m(x))``: the clip's
    own target at alpha 1, the reference's measure plus the clip's noise at alpha 0."""
    task = EventTask(placement="moving")
    c = task.draw(300, seed=4)
    m = task.event_measure(c.x, c.boxes)
    assert np.corrcoef(m.numpy(), c.strength)[0, 1] > 0.99
    assert np.abs(m.numpy() - c.strength).mean() < 0.02
    ref = c.x.mean(0, keepdim=True)
    assert task.event_measure(ref.expand_as(c.x), c.boxes).abs().max() < 0.05
    no_clicks = c.x.clone()
    for i, d in enumerate(c.distractors):
        if d is not None:
            no_clicks[i, :, d[0]:d[1], d[2]:d[3]] = ref[0, :, d[0]:d[1], d[2]:d[3]]
    assert torch.allclose(task.event_measure(no_clicks, c.boxes), m)
    alpha = torch.tensor([1.0, 0.0, 0.5])
    z, y = task.blend(c.x[:3], c.y[:3], ref, alpha, c.boxes[:3])
    assert torch.allclose(z[0], c.x[0]) and torch.allclose(z[1], ref[0])
    assert torch.allclose(y[0], c.y[0])
    m_ref = task.event_measure(ref.expand(3, -1, -1, -1), c.boxes[:3])
    assert torch.allclose(y[:, 0] - c.y[:3, 0], (1 - alpha) * (m_ref - m[:3]), atol=1e-6)
    with pytest.raises(ArgumentError, match="one box per clip"):
        task.event_measure(c.x[:3])
    fixed = EventTask()
    x, _ = fixed.sample(5, seed=1)
    assert torch.allclose(fixed.event_measure(x), fixed.box_energy(x) + fixed.BACKGROUND / 2)


def test_training_with_path_points_leaves_the_plain_model_alone_and_still_reads_the_event():
    """``train_model(path=...)``: ``path=0`` is the plain model parameter for parameter (its
    own random stream), a path-trained model still computes the target."""
    torch.set_num_threads(1)
    task = EventTask(placement="moving")
    plain = task.train_model(n=64, steps=20, seed=1)
    again = task.train_model(n=64, steps=20, seed=1, path=0.0)
    assert all(torch.equal(a, b) for a, b in zip(plain.state_dict().values(),
                                                 again.state_dict().values()))
    calls = []
    original = task.blend

    def spy(x, y, reference, alpha, boxes=None):
        calls.append((x.clone(), boxes))
        return original(x, y, reference, alpha, boxes)

    task.blend = spy
    task.train_model(n=64, steps=5, seed=1)
    assert not calls  # path=0: never
    model = task.train_model(n=256, steps=150, seed=3, path=0.5)
    assert 150 * 16 * 0.4 < sum(len(x) for x, _ in calls) < 150 * 16 * 0.6
    clips = task.draw(256, seed=3)  # each blended clip goes with its own box
    for x, boxes in calls[:20]:
        for xi, box in zip(x, boxes):
            i = next(j for j in range(256) if torch.equal(clips.x[j], xi))
            assert clips.boxes[i] == box
    assert task.held_out_r2(model) > 0.8
    trained = task.train_model(n=256, steps=150, seed=3)
    assert not all(torch.equal(a, b) for a, b in zip(model.state_dict().values(),
                                                     trained.state_dict().values()))
    with pytest.raises(ArgumentError, match="path"):
        task.train_model(n=16, steps=1, path=1.5)
    with pytest.raises(ArgumentError, match="not both"):
        EventTask().train_model(n=16, steps=1, path=0.5, removal=0.5)


def test_the_event_measure_is_the_strength_for_an_odd_box_height_too():
    task = EventTask(box=(8, 13, 30, 40), placement="moving")  # 5 bands: 3 lit, 2 dark
    c = task.draw(200, seed=2)
    assert np.abs(task.event_measure(c.x, c.boxes).numpy() - c.strength).mean() < 0.03
