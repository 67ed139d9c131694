/** @module The workloads `brigade verify` knows, by name. */
import type { Workload } from "../workload.js";
import { AppendWorkload } from "./append.js";
import { BankWorkload } from "./bank.js";
import { CounterWorkload } from "./counter.js";
import { RegisterWorkload } from "./register.js";
import { SetWorkload } from "./set.js";

export const workloadNames = ["register", "counter", "set", "bank", "append"] as const;
export type WorkloadName = (typeof workloadNames)[number];

export function createWorkload(name: WorkloadName, keyspace: string): Workload {
  switch (name) {
    case "register":
      return new RegisterWorkload({ keyspace });
    case "counter":
      return new CounterWorkload({ keyspace });
    case "set":
      return new SetWorkload({ keyspace });
    case "bank":
      return new BankWorkload({ keyspace });
    case "append":
      return new AppendWorkload({ keyspace });
  }
}
