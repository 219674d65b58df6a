# Golden numbers for monitoring/survival.py, computed by R's survival and cmprsk packages.
#
#   Rscript tests/reference/make_reference.R
#
# Writes the input datasets (*.csv without the ref_ prefix) and R's results (ref_*.csv) next to
# this script. Numbers are written with sprintf("%.17g") so that they round-trip exactly; an empty
# cell is R's NA. CI has no R: the output files are committed, and tests/test_survival_reference.py
# compares the Python estimators with them.
#
# Datasets
#   km_small.csv        16 patients, groups A/B, hand-made: two events at day 0 plus a censoring at
#                       day 0, tied events, censorings on event days.
#   km_groups.csv       200 simulated patients in 3 products (integer days, many ties, ~8 % events
#                       at day 0 as non-responders in EFS, administrative censoring).
#   km_heavy_censor.csv 60 patients, mostly censored in the first 100 days: the median is undefined.
#   km_flat.csv         two hand-made curves that sit at exactly S = 0.5: group "drop" falls again
#                       later (R takes the midpoint), group "end" stays at 0.5 to the last time;
#                       group "zero" ends with every remaining patient failing (S = 0, NA limits).
#   cr_small.csv        14 patients, competing risks: events of both causes on the same day, an
#                       event at day 0, censorings on event days.
#   cr_sim.csv          150 simulated patients, causes relapse / death / hsct on a weekly grid, so
#                       that causes tie with each other and with censorings.

suppressPackageStartupMessages({
  library(survival)
  library(cmprsk)
})
options(digits = 17, warn = 1)

args <- commandArgs(trailingOnly = FALSE)
script <- sub("^--file=", "", args[grep("^--file=", args)])
outdir <- if (length(script) == 1) dirname(normalizePath(script)) else "tests/reference"

fmt <- function(x) {
  if (is.numeric(x)) {
    out <- sprintf("%.17g", x)
    out[is.na(x)] <- ""
    out
  } else {
    out <- as.character(x)
    out[is.na(out)] <- ""
    out
  }
}

write_ref <- function(df, name) {
  df[] <- lapply(df, fmt)
  write.csv(df, file.path(outdir, name), row.names = FALSE, quote = TRUE, na = "")
}

# ---------------------------------------------------------------------------------------------
# Datasets
# ---------------------------------------------------------------------------------------------
km_small <- data.frame(
  time  = c(0, 0, 0, 3, 3, 3, 7, 10, 10, 10, 14, 20, 25, 25, 30, 40),
  event = c(1, 1, 0, 1, 1, 0, 0, 1,  1,  0,  1,  0,  1,  0,  1,  0),
  group = c("A", "B", "A", "A", "B", "A", "B", "A", "A", "B", "B", "A", "B", "B", "A", "A")
)

set.seed(20240611)
n <- 200
product <- sample(c("tisagenlecleucel", "obecabtagene", "academic"), n, replace = TRUE,
                  prob = c(0.45, 0.3, 0.25))
rate <- c(tisagenlecleucel = 1 / 900, obecabtagene = 1 / 1400, academic = 1 / 600)[product]
event_time <- round(rexp(n, rate))
admin <- round(runif(n, 30, 1900))
nonresp <- runif(n) < 0.08
time <- ifelse(nonresp, 0, pmin(event_time, admin))
event <- ifelse(nonresp, 1, as.integer(event_time <= admin))
km_groups <- data.frame(time = time, event = event, group = product)

set.seed(7)
n <- 60
cens <- round(runif(n, 1, 100))
ev <- round(rexp(n, 1 / 2000))
km_heavy <- data.frame(time = pmin(cens, ev), event = as.integer(ev <= cens), group = "all")
km_heavy$time[1:7] <- c(400, 520, 610, 5, 12, 12, 30)   # long follow-ups, a few early events
km_heavy$event[1:7] <- c(0, 0, 0, 1, 1, 1, 1)

km_flat <- data.frame(
  time  = c(1, 2, 3, 4, 5, 6,     1, 2, 3, 4,     2, 4, 4, 6, 6),
  event = c(1, 1, 1, 0, 1, 0,     1, 1, 0, 0,     1, 0, 1, 1, 1),
  group = c(rep("drop", 6), rep("end", 4), rep("zero", 5))
)

cr_small <- data.frame(
  time  = c(0, 0, 1, 2, 2, 2, 3, 3, 4, 5, 5, 6, 8, 8),
  cause = c("relapse", "", "death", "relapse", "death", "", "relapse", "relapse", "",
            "death", "", "relapse", "death", "")
)

set.seed(99)
n <- 150
week <- function(x) 7 * ceiling(x / 7)
t_rel <- week(rexp(n, 1 / 500))
t_death <- week(rexp(n, 1 / 1500))
t_hsct <- week(rexp(n, 1 / 1200))
t_cens <- week(runif(n, 20, 1500))
tt <- pmin(t_rel, t_death, t_hsct, t_cens)
cause <- ifelse(tt == t_rel, "relapse", ifelse(tt == t_death, "death",
         ifelse(tt == t_hsct, "hsct", "")))
# deliberate ties across causes and with censoring on the same day
cause[1:6] <- c("relapse", "death", "hsct", "", "relapse", "death")
tt[1:6] <- 91
tt[7:8] <- 0
cause[7:8] <- c("relapse", "death")
cr_sim <- data.frame(time = tt, cause = cause)

write.csv(km_small, file.path(outdir, "km_small.csv"), row.names = FALSE)
write.csv(km_groups, file.path(outdir, "km_groups.csv"), row.names = FALSE)
write.csv(km_heavy, file.path(outdir, "km_heavy_censor.csv"), row.names = FALSE)
write.csv(km_flat, file.path(outdir, "km_flat.csv"), row.names = FALSE)
write.csv(cr_small, file.path(outdir, "cr_small.csv"), row.names = FALSE)
write.csv(cr_sim, file.path(outdir, "cr_sim.csv"), row.names = FALSE)

# ---------------------------------------------------------------------------------------------
# Kaplan-Meier: table, median, landmarks, reverse-KM median
# ---------------------------------------------------------------------------------------------
landmark_days <- c(0, 0.5, 1, 3, 5, 10, 12.5, 30, 40, 41, 100, 6, 12, 24, 36, 60) # last 5: months
landmark_days <- c(landmark_days[1:11], landmark_days[12:16] * 30.4375)

km_rows <- list(); med_rows <- list(); lm_rows <- list()
add_km <- function(dataset, grp, d) {
  fit <- survfit(Surv(time, event) ~ 1, data = d, conf.type = "log-log")
  km_rows[[length(km_rows) + 1]] <<- data.frame(
    dataset = dataset, group = grp, time = fit$time, n_risk = fit$n.risk,
    n_event = fit$n.event, n_censor = fit$n.censor, surv = fit$surv,
    std_err = fit$std.err, lower = fit$lower, upper = fit$upper)

  q <- quantile(fit, probs = 0.5)
  tab <- summary(fit)$table
  rev <- survfit(Surv(time, 1 - event) ~ 1, data = d)
  med_rows[[length(med_rows) + 1]] <<- data.frame(
    dataset = dataset, group = grp, n = nrow(d), events = sum(d$event),
    median = unname(q$quantile), median_lower = unname(q$lower),
    median_upper = unname(q$upper),
    print_median = unname(tab["median"]), print_lower = unname(tab["0.95LCL"]),
    print_upper = unname(tab["0.95UCL"]),
    reverse_km_median = unname(quantile(rev, probs = 0.5, conf.int = FALSE)))

  s <- summary(fit, times = landmark_days, extend = FALSE)
  idx <- match(landmark_days, s$time)
  lm_rows[[length(lm_rows) + 1]] <<- data.frame(
    dataset = dataset, group = grp, time = landmark_days,
    reported = !is.na(idx), n_risk = s$n.risk[idx], surv = s$surv[idx],
    lower = s$lower[idx], upper = s$upper[idx])
}

for (spec in list(list("km_small", km_small), list("km_groups", km_groups),
                  list("km_heavy_censor", km_heavy), list("km_flat", km_flat))) {
  name <- spec[[1]]; d <- spec[[2]]
  if (name != "km_flat") add_km(name, "all", d)
  if (length(unique(d$group)) > 1) {
    for (g in sort(unique(d$group))) add_km(name, g, d[d$group == g, ])
  }
}
write_ref(do.call(rbind, km_rows), "ref_km_table.csv")
write_ref(do.call(rbind, med_rows), "ref_km_median.csv")
write_ref(do.call(rbind, lm_rows), "ref_km_landmarks.csv")

# ---------------------------------------------------------------------------------------------
# Log-rank (survdiff)
# ---------------------------------------------------------------------------------------------
lr_rows <- list()
add_lr <- function(label, dataset, d) {
  sd <- survdiff(Surv(time, event) ~ group, data = d)
  df <- sum(sd$exp > 0) - 1
  lr_rows[[length(lr_rows) + 1]] <<- data.frame(
    label = label, dataset = dataset, groups = paste(sort(unique(d$group)), collapse = "|"),
    chisq = sd$chisq, df = df, p = sd$pvalue)
}
add_lr("small_AB", "km_small", km_small)
add_lr("groups_3", "km_groups", km_groups)
add_lr("groups_2", "km_groups", km_groups[km_groups$group != "academic", ])
add_lr("flat_3", "km_flat", km_flat)
write_ref(do.call(rbind, lr_rows), "ref_logrank.csv")

# ---------------------------------------------------------------------------------------------
# Competing risks: cmprsk::cuminc (estimate, variance) and survfit multi-state pstate
# ---------------------------------------------------------------------------------------------
z <- qnorm(0.975)
cif_rows <- list()
add_cif <- function(dataset, d) {
  status <- ifelse(d$cause == "", "0", d$cause)
  ci <- cuminc(d$time, status, cencode = "0")
  causes <- sort(unique(d$cause[d$cause != ""]))
  st <- factor(ifelse(d$cause == "", "censor", d$cause), levels = c("censor", causes))
  ms <- survfit(Surv(time, st) ~ 1, data = d)
  times <- sort(unique(c(0, d$time)))
  for (k in causes) {
    curve <- ci[[paste("1", k)]]
    j <- findInterval(times, curve$time)      # last corner at or before t (right-continuous)
    est <- curve$est[j]
    v <- curve$var[j]
    a <- z * sqrt(v) / (est * log(est))
    lower <- est^exp(-a)
    upper <- est^exp(a)
    jm <- findInterval(times, ms$time)
    pstate <- ifelse(jm == 0, 0, ms$pstate[pmax(jm, 1), match(k, ms$states)])
    cif_rows[[length(cif_rows) + 1]] <<- data.frame(
      dataset = dataset, cause = k, time = times,
      n_risk = sapply(times, function(t) sum(d$time >= t)),
      n_event = sapply(times, function(t) sum(d$time == t & d$cause == k)),
      n_censor = sapply(times, function(t) sum(d$time == t & d$cause == "")),
      est = est, var = v, lower = lower, upper = upper, pstate = pstate)
  }
}
add_cif("cr_small", cr_small)
add_cif("cr_sim", cr_sim)
write_ref(do.call(rbind, cif_rows), "ref_cif.csv")

writeLines(c(R.version.string,
             paste("survival", as.character(packageVersion("survival"))),
             paste("cmprsk", as.character(packageVersion("cmprsk")))),
           file.path(outdir, "ref_versions.txt"))
cat("reference files written to", outdir, "\n")
