import { Injectable, NestMiddleware } from '@nestjs/common';
import { AdmissionControl } from './admission-control';

/**
 * First thing for POST /orders, before the customer's token is verified and the body validated:
 * a 503 (+ Retry-After) at once when the line at the door is full (AdmissionControl.refuseIfLineFull).
 * Under overload most requests are refused; each costs about a millisecond of CPU less this way,
 * CPU the accepted orders need. Mounted by OrderModule.configure.
 */
@Injectable()
export class DoorShedding implements NestMiddleware {
  constructor(private readonly admission: AdmissionControl) {}

  use(_request: unknown, _response: unknown, next: () => void): void {
    this.admission.refuseIfLineFull();
    next();
  }
}
