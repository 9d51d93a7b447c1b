"""The course dataset of Exercises 5 and 6, and its train/test split.

A Hugging Face Hub id (Databricks, the gpu profile) is loaded from the Hub, or from the local
cache when HF_HUB_OFFLINE=1; a local .json/.jsonl file (offline grading) with the json builder.
Both have the columns instruction, input, output. The grader uses this same code.
"""
TEST_SIZE = 0.1
SPLIT_SEED = 42


def load_course_dataset(dataset_id: str):
    from datasets import load_dataset

    if dataset_id.endswith((".json", ".jsonl")):
        return load_dataset("json", data_files=dataset_id, split="train")
    return load_dataset(dataset_id, split="train")


def course_split(dataset):
    """10% held out as test, seed 42: the same rows in Exercises 5 and 6."""
    return dataset.train_test_split(test_size=TEST_SIZE, seed=SPLIT_SEED)
