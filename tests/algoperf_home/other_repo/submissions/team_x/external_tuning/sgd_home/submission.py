"""An AlgoPerf-form submission that imports its own package by its path in its repository, as the
v0.5 leaderboard's files do (``submissions.submissions_algorithms_v0_5.AlgoPerf_Team_21...``)."""

from algorithmic_efficiency import spec

from submissions.team_x.external_tuning.sgd_home.optim.distributed_sgd import DistributedSGD


def get_batch_size(workload_name):
    return 32


def init_optimizer_state(workload, model_params, model_state, hyperparameters, rng):
    return {"optimizer": DistributedSGD(model_params.parameters(), lr=hyperparameters.learning_rate)}


def update_params(
    workload,
    current_param_container,
    current_params_types,
    model_state,
    hyperparameters,
    batch,
    loss_type,
    optimizer_state,
    eval_results,
    global_step,
    rng,
):
    model = current_param_container
    model.train()
    logits, model_state = workload.model_fn(model, batch, model_state, spec.ForwardPassMode.TRAIN, rng, False)
    loss = workload.loss_fn(batch["targets"], logits)["summed"].mean()
    optimizer_state["optimizer"].zero_grad()
    loss.backward()
    optimizer_state["optimizer"].step()
    return optimizer_state, model, model_state


def data_selection(
    workload, input_queue, optimizer_state, current_param_container, model_state, hyperparameters, global_step, rng
):
    return next(input_queue)
