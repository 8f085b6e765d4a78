"""Learned optimizers and learned schedules (L2O), meta-trained on a task family disjoint from the suite.

- ``rules``: the three learned update rules (per-parameter MLP, learned AdamW schedule,
  coordinatewise LSTM), each a small ``torch.nn.Module`` with one functional ``step``;
- ``optim``: the rules as torch optimizers / an AdamW controller, for submissions;
- ``flat``: all parameters' optimizer state in one matrix, so a rule steps every coordinate at once;
- ``weights``: saving and loading a rule's weights with its architecture;
- ``tasks``: the meta-training task family (random small MLPs and CNNs on generated data);
- ``pes``: persistent evolution strategies (antithetic), the estimator for the MLP and schedule;
- ``meta_train``: the resumable meta-training loop behind ``algobench meta-train``.

Nothing is imported here, so ``algobench --help`` never pays for torch.
"""
