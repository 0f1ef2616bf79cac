import pytest


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    # Fast tests first: a failing unit test should not wait behind npm installs.
    items.sort(key=lambda item: "integration" in item.keywords)
