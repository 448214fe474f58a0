import numpy as np
import torch

from tis_ray.batching import LengthBucketSampler, PairCollator, length_sorted_batches


def test_pair_collator_pads_to_the_longest_row_and_renames_label():
    batch = PairCollator(pad_id=0)([
        {"input_ids": [2, 7, 3], "token_type_ids": [0, 0, 0], "attention_mask": [1, 1, 1], "label": 1, "length": 3},
        {"input_ids": [2, 3], "token_type_ids": [0, 0], "attention_mask": [1, 1], "label": 2, "length": 2}])
    assert batch["input_ids"].tolist() == [[2, 7, 3], [2, 3, 0]]
    assert batch["attention_mask"].tolist() == [[1, 1, 1], [1, 1, 0]]
    assert batch["labels"].tolist() == [1, 2] and "length" not in batch and batch["labels"].dtype == torch.long


def test_length_sorted_batches_cover_rows_longest_first():
    batches = length_sorted_batches(np.array([3, 9, 1, 7, 5]), 2)
    assert [b.tolist() for b in batches] == [[1, 3], [4, 0], [2]]


def bucket_batches(seed, epoch, lengths, batch_size=8):
    sampler = LengthBucketSampler(lengths, batch_size, seed=seed, mega_batches=4)
    sampler.set_epoch(epoch)
    flat = list(sampler)
    return [flat[i: i + batch_size] for i in range(0, len(flat), batch_size)]


def test_length_buckets_in_random_batch_order_reproducible_per_seed_and_epoch():
    lengths = np.random.default_rng(0).integers(5, 128, size=203)
    batches = bucket_batches(1, 0, lengths)
    assert sorted(i for b in batches for i in b) == list(range(203))  # every row once
    assert [len(b) for b in batches] == [8] * 25 + [3]  # the partial batch stays last
    # within a batch lengths are close: sorted inside mega-batches of 4 batches (32 rows)
    spread = np.mean([lengths[b].max() - lengths[b].min() for b in batches[:-1]])
    assert spread < 0.5 * (lengths.max() - lengths.min()) / 2
    longest = [int(lengths[b].max()) for b in batches[:-1]]
    # not monotone: HF's group_by_length would give descending runs of 4 inside every mega-batch
    assert longest != sorted(longest, reverse=True) and longest != sorted(longest)
    assert sum(a < b for a, b in zip(longest, longest[1:], strict=False)) >= 6
    assert bucket_batches(1, 0, lengths) == batches  # same seed and epoch: same order
    assert bucket_batches(1, 1, lengths) != batches and bucket_batches(2, 0, lengths) != batches


def test_pass_sampler_cuts_a_stream_of_passes_into_epochs():
    from tis_ray.batching import PassSampler

    passes = [np.arange(10), np.arange(10, 20)]
    sampler = PassSampler(passes, samples_per_epoch=15, batch_size=5, seed=0)
    epochs = []
    for epoch in range(4):
        sampler.set_epoch(epoch)
        epochs.append(list(sampler))
    stream = np.concatenate(epochs)
    assert all(len(e) == 15 for e in epochs)
    for p in range(6):  # 60 samples: six passes, alternating the two subsets, each a permutation of its rows
        assert sorted(stream[10 * p: 10 * (p + 1)]) == list(passes[p % 2])
    again = PassSampler(passes, samples_per_epoch=15, batch_size=5, seed=0)
    again.set_epoch(2)
    assert list(again) == epochs[2]  # an epoch is a fixed slice: a resumed run repeats it
    bucketed = PassSampler([np.arange(8)], 8, 4, seed=1, lengths=np.array([1, 9, 2, 8, 3, 7, 4, 6]))
    assert sorted(bucketed) == list(range(8))
