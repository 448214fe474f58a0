import numpy as np
import torch

from tis_ray.batching import PairCollator, length_sorted_batches


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
