#!/bin/sh
# Benaloh's time to the total against the number of instances: 5, 10, 20
# and 50 instances, 5 seeds each, on the simulated network (about half a
# minute on a laptop). The tutorial's experiment (scenarios/benaloh) as it
# is; only the instance count is swept. Results in
# output/sweeps/benaloh-instances/: sweep.html (the report), sweep.csv
# (mean, sd and 95% CI per point and metric), charts/*.svg.
# The README's plot is charts/benaloh.time_to_total.mean--vs--instances_to_run.svg.
set -e
cd "$(dirname "$0")/../.."
exec "${PEERLAB:-peerlab}" sweep scenarios/benaloh/benaloh.conf \
    --param instances_to_run=5,10,20,50 --repeat 5 --simulate --seed 1 \
    --name benaloh-instances "$@"
