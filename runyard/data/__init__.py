"""``runyard.data``: describe datasets (``from_pandas``, ``from_numpy``) to log as run inputs."""

from runyard.data.dataset import Dataset, NumpyDataset, PandasDataset, from_numpy, from_pandas

__all__ = ["Dataset", "NumpyDataset", "PandasDataset", "from_numpy", "from_pandas"]
